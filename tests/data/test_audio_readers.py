"""Audio readers, resampler, chunking rule and espeak-ng synthesis (numpy only)."""

from pathlib import Path

import numpy as np
import pytest
import soundfile

from rnnkit.data.audio import (
    EspeakSynthesizer,
    read_audio,
    read_ljspeech,
    read_pairs,
    read_transcript_csv,
    resample,
    split_long_audio,
)
from rnnkit.errors import UserError


def _tone(rate, seconds=0.5, frequency=440.0):
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


@pytest.mark.parametrize("orig,target", [(22050, 16000), (44100, 16000), (8000, 16000)])
def test_resample_keeps_a_tone(orig, target):
    out = resample(_tone(orig), orig, target)
    assert out.size == int(np.ceil(_tone(orig).size * target / orig))
    expected = _tone(target, seconds=out.size / target)[:out.size]
    np.testing.assert_allclose(out[100:-100], expected[100:-100], atol=5e-3)


def test_resample_removes_content_above_the_new_nyquist():
    out = resample(_tone(44100, frequency=12000.0), 44100, 16000)
    assert np.abs(out[200:-200]).max() < 1e-2


def test_read_audio_resamples_and_downmixes(tmp_path):
    stereo = np.stack([_tone(44100), _tone(44100)], axis=1)
    soundfile.write(tmp_path / "a.wav", stereo, 44100, subtype="PCM_16")
    soundfile.write(tmp_path / "b.flac", _tone(8000), 8000)
    a = read_audio(tmp_path / "a.wav")
    b = read_audio(tmp_path / "b.flac")
    assert a.dtype == np.float32 and a.ndim == 1 and a.size == 8000
    assert b.size == 8000 and abs(np.abs(b).max() - 0.5) < 0.02


def test_bad_files_raise_user_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        read_audio(tmp_path / "missing.wav")
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt garbage")
    with pytest.raises(UserError, match="Cannot read"):
        read_audio(tmp_path / "corrupt.wav")
    (tmp_path / "song.mp3").write_bytes(b"ID3\x03\x00" + bytes(200))
    with pytest.raises(UserError, match="Cannot read"):
        read_audio(tmp_path / "song.mp3")
    nan = _tone(16000)
    nan[10] = np.nan
    soundfile.write(tmp_path / "nan.wav", nan, 16000, subtype="FLOAT")
    with pytest.raises(UserError, match="NaN"):
        read_audio(tmp_path / "nan.wav")


def test_empty_file_gives_empty_waveform(tmp_path):
    soundfile.write(tmp_path / "empty.wav", np.zeros(0, np.float32), 16000)
    assert read_audio(tmp_path / "empty.wav").size == 0


def test_ljspeech_and_csv_readers(tmp_path):
    (tmp_path / "wavs").mkdir()
    (tmp_path / "metadata.csv").write_text("LJ1|Raw Text 1.|raw text one\nLJ2|Second.\n")
    pairs = read_ljspeech(tmp_path)
    assert pairs == [(tmp_path / "wavs" / "LJ1.wav", "raw text one"),
                     (tmp_path / "wavs" / "LJ2.wav", "Second.")]
    csv_path = tmp_path / "data.csv"
    csv_path.write_text('path,transcript\nwavs/x.wav,"hello, world"\n/abs/y.flac,bye\n')
    assert read_transcript_csv(csv_path) == [(tmp_path / "wavs" / "x.wav", "hello, world"),
                                             (Path("/abs/y.flac"), "bye")]
    assert read_pairs(tmp_path) == pairs
    with pytest.raises(UserError, match="not found"):
        read_pairs(tmp_path / "nothing")


def test_split_long_audio_is_lossless_and_bounded():
    rng = np.random.default_rng(0)
    wave = rng.normal(size=16000 * 7).astype(np.float32)
    wave[16000 * 2 + 3000:16000 * 2 + 3500] = 0.0  # a pause inside the search window
    chunks = split_long_audio(wave, 16000 * 3)
    assert all(c.size <= 16000 * 3 for c in chunks)
    np.testing.assert_array_equal(np.concatenate(chunks), wave)
    assert 16000 * 2 + 3000 <= chunks[0].size <= 16000 * 2 + 3500  # cut in the pause
    assert len(split_long_audio(wave[:100], 16000)) == 1


def test_espeak_synthesis_is_deterministic():
    synth = EspeakSynthesizer()
    first = synth.synthesize("one two three", voice="en-us", variant="f3", rate=180, pitch=40)
    second = synth.synthesize("one two three", voice="en-us", variant="f3", rate=180, pitch=40)
    assert synth.sample_rate == 22050
    assert first.dtype == np.int16 and first.size > 0.5 * 22050
    # libespeak-ng carries a little state between calls (a few samples of jitter), so the
    # corpus is made reproducible by its .npz cache, not by bit-exact synthesis.
    assert abs(first.size - second.size) < 0.02 * first.size
    assert "f3" in synth.variants()
    with pytest.raises(UserError, match="voice"):
        synth.synthesize("x", voice="no-such-voice")
