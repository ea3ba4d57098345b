"""Synthetic speech from several engines, channel effects, and the real-speech readers.

.ci/run installs espeak-ng, mbrola (+ us1/us2/us3/en1), flite, festival (+ kal, ked, slt-hts)
and pocketsphinx-testdata: without them the tests that need them fail with the install advice.
"""

from __future__ import annotations

import collections

import numpy as np
import pytest

from apps.speech_to_text import channel, engines
from apps.speech_to_text.config import SpeechToTextConfig
from apps.speech_to_text.data import (
    SpeechSet,
    augment_waveform,
    error_rates_by_source,
    is_held_out_text,
    source_engine,
    source_voice,
    synthesize_set,
)
from apps.speech_to_text.engines import Request, available_engines, check_engine
from apps.speech_to_text.real_speech import (
    DATA,
    INSTALL,
    main,
    read_raw_pcm,
    real_sets,
    score_real_sets,
)
from rnnkit.errors import UserError

TINY = dict(train_size=12, val_size=6, test_size=6, max_seconds=6.0)


# ------------------------------------------------------------------------------ engines
@pytest.mark.parametrize("name", engines.ENGINES)
def test_engine_speaks_every_voice_with_rate_and_pitch_control(name):
    engine = check_engine(name)  # fails with the apt/pip advice when not installed
    voices = engine.voices()
    assert voices and all(v.startswith(f"{name}:") for v in voices)
    if name == "espeak":
        voices = ["espeak:en-us", "espeak:en-gb-x-rp+f3"]
    slow = engine.synthesize_many([Request("seven three nine", v, rate=0.75) for v in voices])
    fast = engine.synthesize_many([Request("seven three nine", v, rate=1.3) for v in voices])
    high = engine.synthesize_many([Request("seven three nine", v, rate=0.75, pitch=1.25)
                                   for v in voices])
    for voice, (wave, rate), (quick, _), (raised, _) in zip(voices, slow, fast, high,
                                                             strict=True):
        seconds = wave.size / rate
        assert rate in (8000, 16000, 22050, 32000), voice
        assert 0.5 < seconds < 5.0, (voice, seconds)
        assert np.sqrt(np.mean(wave**2)) > 0.01, voice  # speech, not silence
        assert quick.size < 0.9 * wave.size, voice  # faster speech is shorter
        if voice not in ("festival:cmu_us_slt_arctic_hts", "flite:rms"):  # own pitch only
            assert raised.size != wave.size or not np.allclose(raised, wave), voice


def test_missing_engine_is_skipped_with_one_warning_and_espeak_is_required(monkeypatch, capsys):
    monkeypatch.setattr(engines.shutil, "which", lambda program: None)
    monkeypatch.setattr(engines, "_WARNED", set())
    monkeypatch.delenv("RNNKIT_QUIET_ENGINES", raising=False)
    found = available_engines(["espeak", "flite", "festival"])
    available_engines(["flite"])  # warned once only
    assert list(found) == ["espeak"]
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2
    assert "'flite' skipped" in lines[0] and "apt-get install flite" in lines[0]
    assert "'festival' skipped" in lines[1] and "festvox" in lines[1]
    with pytest.raises(UserError, match=r"'mbrola' cannot run.*apt-get install espeak-ng mbrola"):
        check_engine("mbrola")
    with pytest.raises(UserError, match="Unknown speech engine.*'sapi'"):
        engines.get_engine("sapi")
    monkeypatch.setattr(engines.EspeakEngine, "missing", lambda self: "not here")
    with pytest.raises(UserError, match="needs espeak-ng.*espeakng-loader"):
        available_engines(["espeak"])


def test_synthetic_set_mixes_engines_holds_voices_out_and_is_deterministic():
    for name in engines.ENGINES:
        check_engine(name)
    config = SpeechToTextConfig(**TINY, engine_weights=[0.25, 0.25, 0.25, 0.25],
                                held_out_voices=["mbrola:us3", "flite:rms", "flite:kal"])
    train = synthesize_set(24, "train", config, seed=7)
    test = synthesize_set(16, "test", config, seed=7)
    assert len(train) == 24 and len(test) == 16
    assert len({source_engine(s) for s in train.sources}) >= 3
    held = set(config.held_out_voices)
    assert not {source_voice(s) for s in train.sources} & held
    assert not any(is_held_out_text(t) for t in train.texts)
    assert all(is_held_out_text(t) for t in test.texts)
    assert all(0 < n <= 6.0 * 16000 for n in train.lengths())
    again = synthesize_set(24, "train", config, seed=7)
    assert again.sources == train.sources and again.texts == train.texts
    for i, source in enumerate(train.sources):
        if source_engine(source) == "espeak":  # espeak-ng's timing varies a little per run
            assert abs(int(again.lengths()[i]) - int(train.lengths()[i])) < 0.05 * train.lengths()[i]
        else:  # the programs speak the same row the same way
            np.testing.assert_array_equal(again.waveform(i), train.waveform(i))
    # more of the test split with held-out voices: they appear there
    wide = synthesize_set(40, "test", config, seed=3)
    assert {source_voice(s) for s in wide.sources} & held


def test_engine_weights_and_held_out_voices_are_checked():
    with pytest.raises(UserError, match="one weight per engine"):
        synthesize_set(2, "train", SpeechToTextConfig(engine_weights=[1.0]), seed=0)
    config = SpeechToTextConfig(engines=["espeak"], engine_weights=[1.0],
                                held_out_voices=[f"espeak:{a}" for a in
                                                 engines.EspeakEngine.ACCENTS])
    with pytest.raises(UserError, match="Every espeak voice is held out"):
        synthesize_set(2, "train", config, seed=0)
    with pytest.raises(UserError, match=r"held_out_voices.*Received: \['slt'\]"):
        synthesize_set(2, "train", SpeechToTextConfig(held_out_voices=["slt"]), seed=0)


def test_sources_name_engine_and_voice_and_rates_group_by_them():
    assert source_engine("flite:slt@1.10x/0.90p") == "flite"
    assert source_voice("espeak:en-us+f3@170wpm") == "espeak:en-us"
    assert source_engine("en-us+f3@170wpm") == "espeak"  # runs recorded before engines
    data = SpeechSet.from_waveforms(
        [np.zeros(10, np.float32)] * 3, ["one two", "three four", "five"],
        ["flite:slt@1.00x/1.00p", "flite:awb@1.00x/1.00p", "mbrola:us1@1.00x/1.00p"])
    report = error_rates_by_source(data, ["one two", "three", "five"])
    assert report["by_engine"]["flite"] == {"wer": 0.25, "cer": 5 / 17, "examples": 2}
    assert report["by_engine"]["mbrola"]["wer"] == 0.0
    assert report["by_voice"]["flite:awb"]["wer"] == 0.5
    files = SpeechSet.from_waveforms([np.zeros(4, np.float32)], ["a"], ["/data/x@y.wav"])
    assert error_rates_by_source(files, ["a"]) == {}


# ------------------------------------------------------------------------------ channel
def _band_power(wave, low, high, rate=16000):
    spectrum = np.abs(np.fft.rfft(wave)) ** 2
    freqs = np.fft.rfftfreq(wave.size, 1 / rate)
    return spectrum[(freqs >= low) & (freqs < high)].sum()


@pytest.mark.parametrize("kind, slope_db", [("white", 3.0), ("pink", 0.0), ("brown", -3.0)])
def test_colored_noise_has_its_spectral_slope(kind, slope_db):
    noise = channel.colored_noise(kind, 64000, np.random.default_rng(0))
    assert noise.dtype == np.float32 and np.isclose(np.sqrt(np.mean(noise**2)), 1.0, rtol=1e-3)
    # power per octave band: white doubles (+3 dB), pink is flat, brown halves (-3 dB)
    ratio_db = 10 * np.log10(_band_power(noise, 2000, 4000) / _band_power(noise, 1000, 2000))
    assert abs(ratio_db - slope_db) < 0.6, ratio_db
    with pytest.raises(ValueError, match="Unknown noise kind"):
        channel.colored_noise("blue", 10, np.random.default_rng(0))


def test_telephone_band_limits_to_4_khz_and_mu_law_quantizes():
    rng = np.random.default_rng(1)
    wave = (0.3 * rng.standard_normal(16000)).astype(np.float32)
    line = channel.telephone(wave, rng, mu_law_probability=0.0)
    assert line.shape == wave.shape
    assert _band_power(line, 4300, 8000) < 0.01 * _band_power(wave, 4300, 8000)
    assert _band_power(line, 300, 3000) > 0.9 * _band_power(wave, 300, 3000)
    coded = channel.mu_law(np.linspace(-1, 1, 5001).astype(np.float32))
    assert len(np.unique(coded)) <= 256
    assert np.max(np.abs(coded - np.linspace(-1, 1, 5001))) < 0.03
    quiet = np.float32(0.01)  # μ-law keeps small levels fine-grained
    assert abs(channel.mu_law(np.array([quiet]))[0] - quiet) < 0.001


def test_hum_babble_clip_and_padding():
    rng = np.random.default_rng(2)
    hum = channel.hum(16000, rng)
    peak = np.argmax(np.abs(np.fft.rfft(hum)))  # 1 Hz bins
    assert peak in {base * h for base in (50, 60) for h in range(1, 6)}
    other = np.sin(np.arange(8000) * 0.3).astype(np.float32)
    babble = channel.babble(16000, [other], rng, talkers=1)
    assert np.isclose(np.sqrt(np.mean(babble**2)), 1.0, rtol=1e-3)
    assert np.argmax(np.abs(np.fft.rfft(babble))) == np.argmax(np.abs(np.fft.rfft(
        np.resize(other, 16000))))
    speech = (0.2 * rng.standard_normal(4000)).astype(np.float32)
    clipped = channel.clip(speech, rng, max_share=0.05)
    share = np.mean(np.abs(clipped) >= 1.0)
    assert np.abs(clipped).max() <= 1.0 and 0.0 < share <= 0.06
    padded = channel.pad_with_silence(speech, 5, 7)
    assert padded.size == 4012 and not padded[:5].any() and not padded[-7:].any()
    mixed = channel.mix_at_snr(speech, channel.colored_noise("white", 4000, rng), 10.0)
    noise_power = np.mean((mixed - speech) ** 2)
    assert np.isclose(10 * np.log10(np.mean(speech**2) / noise_power), 10.0, atol=0.01)


@pytest.mark.parametrize("field", ["babble_probability", "hum_probability",
                                   "telephone_probability", "dc_offset_probability",
                                   "clip_probability"])
def test_each_channel_effect_changes_training_rows_only_when_on(field):
    rng = np.random.default_rng(3)
    wave = (0.1 * rng.standard_normal(3200)).astype(np.float32)
    others = [(0.1 * rng.standard_normal(2000)).astype(np.float32)]
    off = SpeechToTextConfig(noise_probability=0.0)
    on = SpeechToTextConfig(noise_probability=0.0, **{field: 1.0})
    dry = augment_waveform(wave, off, np.random.default_rng(5), others=others)
    wet = augment_waveform(wave, on, np.random.default_rng(5), others=others)
    assert dry.shape == wet.shape == wave.shape and not np.allclose(dry, wet)
    assert np.abs(wet).max() <= 1.0


def test_unknown_noise_kind_is_a_user_error():
    config = SpeechToTextConfig(noise_probability=1.0, noise_kinds=["purple"])
    with pytest.raises(UserError, match="Unknown noise kind.*'purple'.*white, pink, brown"):
        augment_waveform(np.ones(100, np.float32) * 0.1, config, np.random.default_rng(0))


# ------------------------------------------------------------------------------ real speech
def _require_testdata():
    if not (DATA / "librivox" / "transcription").is_file():
        pytest.fail(f"pocketsphinx-testdata is not installed ({INSTALL})")


def test_real_sets_read_every_installed_recording_with_its_transcript():
    _require_testdata()
    sets = real_sets()
    assert {name: len(data) for name, data in sets.items()} == {
        "pocketsphinx-librivox": 5, "pocketsphinx-cards": 5, "pocketsphinx-commands": 2}
    assert sets["pocketsphinx-cards"].texts[0] == "ten of clubs"
    assert sets["pocketsphinx-commands"].texts == ["go forward ten meters",
                                                   "two nine three four zero"]
    for data in sets.values():
        for i in range(len(data)):
            wave = data.waveform(i)
            assert 1.0 < wave.size / 16000 < 15.0 and np.sqrt(np.mean(wave**2)) > 0.005
    # the 8 kHz TIDIGITS clip: 76,800 bytes = 38,400 samples = 4.8 s, read at 16 kHz
    assert sets["pocketsphinx-commands"].lengths()[1] == 76800


def test_raw_reader_and_transcription_parser(tmp_path):
    from apps.speech_to_text.real_speech import READERS

    (tmp_path / "cards").mkdir()
    import soundfile

    soundfile.write(tmp_path / "cards" / "001.wav", np.full(8000, 0.1), 8000)
    (tmp_path / "cards" / "cards.transcription").write_text(
        "<s> ACE of Spades </s> (001)\nnot a line\n")
    data = READERS["pocketsphinx-cards"][0](tmp_path, 16000)
    assert data.texts == ["ace of spades"] and data.lengths()[0] == 16000
    np.concatenate([np.full(400, 1000), np.full(400, -2000)]).astype("<i2").tofile(
        tmp_path / "x.raw")
    wave = read_raw_pcm(tmp_path / "x.raw", 8000, 16000)
    assert wave.size == 1600
    np.testing.assert_allclose(wave[100:700], 1000 / 32768, rtol=1e-2)
    np.testing.assert_allclose(wave[900:1500], -2000 / 32768, rtol=1e-2)
    assert real_sets(root=tmp_path / "nothing") == {}
    with pytest.raises(UserError, match="not found"):
        read_raw_pcm(tmp_path / "missing.raw", 8000)


def test_real_speech_command_prints_the_table_for_the_shipped_model(capsys):
    _require_testdata()
    from pathlib import Path

    shipped = Path(__file__).resolve().parents[2] / "exported" / "speech_to_text"
    report = main([str(shipped), "--backend", "onnx"])
    out = capsys.readouterr().out
    assert report["all"]["examples"] == 12
    assert "pocketsphinx-librivox" in out and out.strip().splitlines()[-1].startswith("all")
    assert 0.0 <= report["all"]["cer"] <= 1.5
    with pytest.raises(SystemExit) as exit_info:
        main([str(shipped.parent)])
    assert exit_info.value.code == 2
    assert "error: Not a speech_to_text export" in capsys.readouterr().err


def test_score_real_sets_totals_over_sets():
    class Echo:  # transcribes every clip as "ten of clubs"
        def transcribe_many(self, waves):
            return ["ten of clubs"] * len(waves)

    sets = {"a": SpeechSet.from_waveforms([np.zeros(1, np.float32)] * 2,
                                          ["ten of clubs", "five"], ["x", "y"])}
    report = score_real_sets(Echo(), sets)
    assert report["a"]["wer"] == 0.75 and report["all"]["examples"] == 2
    counts = collections.Counter(report)
    assert set(counts) == {"a", "all"}


def test_real_speech_report_is_empty_without_sets_and_scored_with_them(monkeypatch):
    import apps.speech_to_text.real_speech as real_speech
    from apps.speech_to_text.task import real_speech_report

    class Echo:
        spec = type("Spec", (), {"sample_rate": 16000})()

        def transcribe_many(self, waves):
            return ["five"] * len(waves)

    monkeypatch.setattr(real_speech, "real_sets", lambda sample_rate=16000: {})
    assert real_speech_report(Echo()) == {}
    sets = {"x": SpeechSet.from_waveforms([np.zeros(1, np.float32)], ["five"], ["f"])}
    monkeypatch.setattr(real_speech, "real_sets", lambda sample_rate=16000: sets)
    report = real_speech_report(Echo())["real_speech"]
    assert report["x"] == {"wer": 0.0, "cer": 0.0, "examples": 1} and report["all"]["wer"] == 0.0
