"""The Node.js reference client (clients/node) reproduces rnnkit.runtime on the shipped exports.

For every shipped export the client supports, the client runs the held-out sample the
manifest names and its decoded outputs (labels; translations under greedy and under the
manifest's beam search) must equal rnnkit.runtime's on fp32 ONNX, and its tokenizer.json
reader must give the ``tokenizers`` library's ids.

Node.js and onnxruntime-node are required: CI installs them (``make node-client``). When
either is missing these tests FAIL with the install command. To opt out explicitly on a
machine without Node, set ``RNNKIT_SKIP_NODE_CLIENT=1`` (the tests are then skipped with
that reason, never silently).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "clients" / "node"
EXPORTED = ROOT / "exported"
OPT_OUT = "RNNKIT_SKIP_NODE_CLIENT"

# Texts that exercise the tokenizer reader's edge cases (specials typed in the text,
# Unicode normalization and case, digits, whitespace runs, empty text, unknown characters).
EDGE_TEXTS = [
    "",
    "   ",
    "Hello <unk> world </s><s>",
    "ÉCOLE Straße İstanbul ΣΑΣ ﬁne ½ café",
    "don't   stop\tbelieving\n— 1234.56 SEK649.92",
    "(brackets) [x] {y}: 50% ; end.",
    "日本語のテキスト 😀 emoji",
    "won’t can't it's",
]


# Pools for seeded random texts: scripts, marks, joiners, compatibility characters, numbers.
RANDOM_POOLS = ["abcXYZ", "0123456789", " \t\n\u00a0\u2003", ".,!?;:'’\"()[]{}-—%&", "éàüßİıΣσςÅ",
                "\u0301\u0308\u0327", "日本語한국어", "😀👍🏽", "ﬁ½²Ⅻ㎏", "<unk></s><s><pad>",
                "\u200d\u200c\ufeff", "Ωωπ", "\u0915\u093f\u094d",
                "\u3007\u16ee\u0bf0\u1810\u2070\u00aa\u02b0"]


def _random_texts(count: int, seed: int = 0) -> list[str]:
    import random

    rng = random.Random(seed)
    return ["".join(rng.choice(rng.choice(RANDOM_POOLS)) for _ in range(rng.randint(0, 25)))
            for _ in range(count)]


def _node_ready() -> str:
    """Path of `node`, or fail/skip with the reason (see the module docstring)."""
    if os.environ.get(OPT_OUT) == "1":
        pytest.skip(f"{OPT_OUT}=1: Node.js client tests opted out explicitly")
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js (node >= 20) is not installed: install it, then `make node-client` "
                    f"(or set {OPT_OUT}=1 to opt out explicitly)")
    if not (CLIENT / "node_modules" / "onnxruntime-node").is_dir():
        pytest.fail("onnxruntime-node is not installed in clients/node: run `make node-client` "
                    f"(or set {OPT_OUT}=1 to opt out explicitly)")
    return node


def _run_client(*args: str) -> list[dict]:
    node = _node_ready()
    proc = subprocess.run([node, str(CLIENT / "src" / "cli.js"), *args], capture_output=True,
                          text=True, timeout=600, check=False)
    assert proc.returncode == 0, f"node client failed ({proc.returncode}): {proc.stderr}"
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def _node_tokenizer(asset: str, method: str, values: list) -> list:
    """``Tokenizer.load(asset).<method>(value)`` for each value, run by the JS reader."""
    node = _node_ready()
    script = (
        "import { Tokenizer } from './src/tokenizer.js';"
        "import { readFileSync } from 'node:fs';"
        "const tok = Tokenizer.load(process.argv[1]);"
        "const values = JSON.parse(readFileSync(0, 'utf8'));"
        f"process.stdout.write(JSON.stringify(values.map((v) => tok.{method}(v))));"
    )
    proc = subprocess.run([node, "--input-type=module", "-e", script, str(EXPORTED / asset)],
                          input=json.dumps(values), capture_output=True, text=True, cwd=CLIENT,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _sentiment_texts() -> list[str]:
    manifest = json.loads((EXPORTED / "sentiment" / "manifest.json").read_text())
    path = EXPORTED / "sentiment" / manifest["metrics"]["test_sample_accuracy"]["file"]
    return [json.loads(line)["text"] for line in path.read_text().splitlines() if line.strip()]


def _translation_sources() -> list[str]:
    manifest = json.loads((EXPORTED / "translation" / "manifest.json").read_text())
    path = EXPORTED / "translation" / manifest["heldout_sample"]
    return [line.split("\t")[0] for line in path.read_text(encoding="utf-8").splitlines() if line]


def test_client_cli_rejects_bad_input(tmp_path):
    node = _node_ready()
    proc = subprocess.run([node, str(CLIENT / "src" / "cli.js"), str(tmp_path), "--sample"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and "manifest.json" in proc.stderr


@pytest.mark.parametrize("asset", ["sentiment/assets/tokenizer.json",
                                   "translation/assets/source_tokenizer.json",
                                   "translation/assets/target_tokenizer.json",
                                   "captioning/assets/tokenizer.json"])
def test_tokenizer_reader_matches_tokenizers_library(asset, tmp_path):
    from tokenizers import Tokenizer

    texts = EDGE_TEXTS + _sentiment_texts()[:100] + _translation_sources() + _random_texts(3000)
    reference = Tokenizer.from_file(str(EXPORTED / asset))
    got = _node_tokenizer(asset, "encode", texts)
    expected = [reference.encode(t, add_special_tokens=False).ids for t in texts]
    mismatched = [(t, g, e) for t, g, e in zip(texts, got, expected, strict=True) if g != e]
    assert not mismatched, f"{len(mismatched)}/{len(texts)} differ, first: {mismatched[:3]}"


def test_sentiment_heldout_sample_identical_to_runtime():
    from apps.sentiment.runtime import SentimentPredictor

    texts = _sentiment_texts()
    expected = SentimentPredictor(EXPORTED / "sentiment", backend="onnx").predict(texts)
    got = _run_client(str(EXPORTED / "sentiment"), "--sample")
    assert [g["input"] for g in got] == texts
    labels_equal = sum(g["label"] == e["label"] for g, e in zip(got, expected, strict=True))
    assert labels_equal == len(texts), f"labels identical for {labels_equal}/{len(texts)}"
    worst = max(abs(p - e["probabilities"][label])
                for g, e in zip(got, expected, strict=True)
                for p, label in zip(g["probabilities"], e["probabilities"], strict=True))
    assert worst < 1e-5


@pytest.mark.parametrize("method", ["greedy", "beam"])
def test_translation_heldout_sample_identical_to_runtime(method):
    from apps.translation.translator import TranslationPredictor

    manifest = json.loads((EXPORTED / "translation" / "manifest.json").read_text())
    settings = manifest["translation"]
    sources = _translation_sources()
    translator = TranslationPredictor(EXPORTED / "translation", backend="onnx")
    expected = translator.translate(sources, method, beam_width=settings["beam_width"],
                                    length_penalty=settings["length_penalty"])
    got = _run_client(str(EXPORTED / "translation"), "--sample", "--method", method)
    assert [g["input"] for g in got] == sources
    ids_equal = sum(g["ids"] == list(e["ids"]) for g, e in zip(got, expected, strict=True))
    text_equal = sum(g["translation"] == e["translation"]
                     for g, e in zip(got, expected, strict=True))
    assert (ids_equal, text_equal) == (len(sources), len(sources)), (
        f"{method}: ids identical {ids_equal}/{len(sources)}, text {text_equal}/{len(sources)}")
    assert [g["truncated"] for g in got] == [e["truncated"] for e in expected]


def test_edge_inputs_identical_to_runtime():
    """Empty/whitespace-only texts, typed special tokens and over-long sources."""
    from apps.sentiment.runtime import SentimentPredictor
    from apps.translation.translator import TranslationPredictor

    long_source = " ".join(["one hundred and seventy-third"] * 12)  # > max_source_length
    texts = [*EDGE_TEXTS, long_source]
    args = [a for t in texts for a in ("--text", t)]

    expected = SentimentPredictor(EXPORTED / "sentiment", backend="onnx").predict(texts)
    got = _run_client(str(EXPORTED / "sentiment"), *args)
    assert [g["label"] for g in got] == [e["label"] for e in expected]
    for g, e in zip(got, expected, strict=True):
        assert g["probabilities"] == pytest.approx(list(e["probabilities"].values()), abs=1e-5)

    translator = TranslationPredictor(EXPORTED / "translation", backend="onnx")
    with pytest.warns(UserWarning, match="max_source_length"):
        expected = translator.translate(texts, "greedy")
    got = _run_client(str(EXPORTED / "translation"), *args, "--method", "greedy")
    assert [g["translation"] for g in got] == [e["translation"] for e in expected]
    assert [g["truncated"] for g in got] == [e["truncated"] for e in expected]
    assert got[-1]["truncated"] is True


def _speech_waves() -> list:
    import numpy as np

    manifest = json.loads((EXPORTED / "speech_to_text" / "manifest.json").read_text())
    data = np.load(EXPORTED / "speech_to_text" / manifest["heldout_sample"]["file"])
    audio = data["audio"].astype(np.float32) / np.float32(32767.0)  # the sample's int16 scale
    offsets = data["offsets"]
    return [audio[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]


def test_speech_heldout_sample_identical_to_runtime():
    from apps.speech_to_text.transcriber import Transcriber

    manifest = json.loads((EXPORTED / "speech_to_text" / "manifest.json").read_text())
    expected = Transcriber(EXPORTED / "speech_to_text", backend="onnx").transcribe_many(
        _speech_waves())
    got = [g["transcript"] for g in _run_client(str(EXPORTED / "speech_to_text"), "--sample")]
    same = sum(g == e for g, e in zip(got, expected, strict=True))
    assert same == len(expected) == 30, f"transcripts identical for {same}/{len(expected)}"
    assert got == manifest["heldout_sample"]["transcripts"]


def test_speech_long_audio_chunked_like_runtime(tmp_path):
    """Utterances joined into waveforms longer than max_audio_seconds: same chunks, same text."""
    import numpy as np

    from apps.speech_to_text.transcriber import Transcriber
    from rnnkit.runtime.audio import split_long_audio

    waves = _speech_waves()
    joined = [np.concatenate(waves), np.concatenate(waves[::-1][:20]),
              np.concatenate([np.zeros(16000 * 21, np.float32), waves[0]])]  # silence, then speech
    transcriber = Transcriber(EXPORTED / "speech_to_text", backend="onnx")
    chunks = [len(split_long_audio(w, transcriber.spec.max_samples, 16000,
                                   transcriber.spec.search_seconds)) for w in joined]
    assert all(count >= 2 for count in chunks), chunks  # every waveform is cut
    expected = transcriber.transcribe_many(joined)
    pcm = np.concatenate([np.round(w * 32767).astype(np.int16) for w in joined])
    offsets = np.cumsum([0] + [len(w) for w in joined]).astype(np.int64)
    np.savez_compressed(tmp_path / "long.npz", audio=pcm, offsets=offsets)
    got = _run_client(str(EXPORTED / "speech_to_text"), "--audio-npz", str(tmp_path / "long.npz"))
    assert [g["transcript"] for g in got] == expected
    assert all(len(t.split()) > 10 for t in expected[:2])


def _caption_images() -> list[Path]:
    manifest = json.loads((EXPORTED / "captioning" / "manifest.json").read_text())
    return sorted((EXPORTED / "captioning" / manifest["sample"]["folder"]).glob("*.png"))


def test_captioning_sample_identical_to_runtime():
    from apps.captioning.captioner import Captioner

    images = _caption_images()
    expected = Captioner(EXPORTED / "captioning", backend="onnx").caption([str(p) for p in images])
    got = _run_client(str(EXPORTED / "captioning"), "--sample")
    assert [g["input"] for g in got] == [p.name for p in images]
    ids_equal = sum(g["ids"] == list(e["ids"]) for g, e in zip(got, expected, strict=True))
    text_equal = sum(g["caption"] == e["caption"] for g, e in zip(got, expected, strict=True))
    assert (ids_equal, text_equal) == (len(images), len(images)) == (32, 32), (
        f"ids identical {ids_equal}/{len(images)}, captions {text_equal}/{len(images)}")


def test_captioning_grey_rgba_and_odd_size_images(tmp_path):
    """Grey, grey+alpha, RGBA and odd-size PNGs give the Captioner's captions (Pillow's
    compositing and bilinear resize reproduced byte for byte)."""
    import numpy as np
    from PIL import Image

    from apps.captioning.captioner import Captioner
    from rnnkit.data.images import load_image

    rng = np.random.default_rng(0)
    made = []
    for index, source in enumerate(_caption_images()[:12]):
        image = Image.open(source).convert("RGB")
        kind = index % 6
        if kind == 0:
            image = image.convert("L")
        elif kind == 1:
            image = image.convert("LA")
            image.putalpha(Image.fromarray(rng.integers(0, 256, image.size[::-1], dtype=np.uint8)))
        elif kind == 2:
            image = image.convert("RGBA")
            image.putalpha(Image.fromarray(rng.integers(0, 256, image.size[::-1], dtype=np.uint8)))
        elif kind == 3:
            image = image.resize((97, 51), Image.Resampling.BICUBIC)
        elif kind == 4:
            image = image.resize((40, 130), Image.Resampling.NEAREST).convert("RGBA")
        else:
            image = image.resize((300, 200), Image.Resampling.LANCZOS).convert("L")
        path = tmp_path / f"{index:03d}_{image.mode}_{image.width}x{image.height}.png"
        image.save(path)
        made.append(path)
    node = _node_ready()
    script = (
        "import { createCaptioning } from './src/apps/captioning.js';"
        "import { ExportDir } from './src/export_dir.js';"
        "const app = await createCaptioning(new ExportDir(process.argv[1]));"
        "process.stdout.write(JSON.stringify(app.pixelsOf(process.argv.slice(2))));"
    )
    proc = subprocess.run([node, "--input-type=module", "-e", script,
                           str(EXPORTED / "captioning"), *map(str, made)],
                          capture_output=True, text=True, cwd=CLIENT, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    pixels = json.loads(proc.stdout)
    size = json.loads((EXPORTED / "captioning" / "manifest.json").read_text())[
        "preprocessing"]["image_size"]
    for path, got in zip(made, pixels, strict=True):
        expected = load_image(path, size).reshape(-1).tolist()
        assert got == expected, f"{path.name}: {sum(g != e for g, e in zip(got, expected, strict=True))} bytes differ"

    expected = Captioner(EXPORTED / "captioning", backend="onnx").caption([str(p) for p in made])
    got = _run_client(str(EXPORTED / "captioning"), *[a for p in made for a in ("--image", str(p))])
    assert [g["caption"] for g in got] == [e["caption"] for e in expected]

    palette = tmp_path / "palette.png"
    Image.open(made[0]).convert("P").save(palette)
    proc = subprocess.run([node, str(CLIENT / "src" / "cli.js"), str(EXPORTED / "captioning"),
                           "--image", str(palette)], capture_output=True, text=True, timeout=60,
                          check=False)
    assert proc.returncode == 2 and "color type 3" in proc.stderr, proc.stderr


@pytest.mark.parametrize("rate", [8000, 22050, 44100])
def test_speech_resampled_audio_like_runtime(rate, tmp_path):
    """Held-out utterances stored at another rate: the client's resampler gives the
    Transcriber's transcripts (samples agree to float32 rounding, see clients/node/README)."""
    import numpy as np

    from apps.speech_to_text.transcriber import Transcriber
    from rnnkit.data.audio import resample

    waves = _speech_waves()[:12]
    pcm = [np.round(np.clip(resample(w, 16000, rate), -1, 1) * 32767).astype(np.int16)
           for w in waves]
    offsets = np.cumsum([0] + [len(p) for p in pcm]).astype(np.int64)
    np.savez_compressed(tmp_path / "rate.npz", audio=np.concatenate(pcm), offsets=offsets)
    transcriber = Transcriber(EXPORTED / "speech_to_text", backend="onnx")
    expected = transcriber.transcribe_many(
        [resample(p.astype(np.float32) / np.float32(32767.0), rate, 16000) for p in pcm])
    got = _run_client(str(EXPORTED / "speech_to_text"), "--audio-npz", str(tmp_path / "rate.npz"),
                      "--sample-rate", str(rate))
    same = sum(g["transcript"] == e for g, e in zip(got, expected, strict=True))
    assert same == len(expected), f"{rate} Hz: transcripts identical for {same}/{len(expected)}"


def test_resampler_samples_match_runtime_to_float32_rounding():
    import numpy as np

    from rnnkit.data.audio import resample

    wave = np.random.default_rng(0).standard_normal(4000).astype(np.float32) * 0.3
    node = _node_ready()
    script = (
        "import { resample } from './src/apps/speech_to_text.js';"
        "import { readFileSync } from 'node:fs';"
        "const { wave, rates } = JSON.parse(readFileSync(0, 'utf8'));"
        "const w = Float32Array.from(wave);"
        "process.stdout.write(JSON.stringify(rates.map((r) => Array.from(resample(w, r, 16000)))));"
    )
    rates = [8000, 11025, 22050, 44100, 48000]
    proc = subprocess.run([node, "--input-type=module", "-e", script],
                          input=json.dumps({"wave": wave.tolist(), "rates": rates}),
                          capture_output=True, text=True, cwd=CLIENT, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    for rate, got in zip(rates, json.loads(proc.stdout), strict=True):
        expected = resample(wave, rate, 16000)
        assert len(got) == expected.size
        assert np.max(np.abs(np.asarray(got, np.float32) - expected)) <= 2.5e-7, rate


@pytest.mark.parametrize("asset", ["translation/assets/target_tokenizer.json",
                                   "captioning/assets/tokenizer.json",
                                   "sentiment/assets/tokenizer.json"])
def test_tokenizer_reader_decodes_like_tokenizers_library(asset):
    import random

    from tokenizers import Tokenizer

    reference = Tokenizer.from_file(str(EXPORTED / asset))
    rng = random.Random(1)
    size = reference.get_vocab_size()
    rows = [[rng.randrange(size) for _ in range(rng.randint(0, 12))] for _ in range(2000)]
    expected = [reference.decode(r, skip_special_tokens=False) for r in rows]
    got = _node_tokenizer(asset, "decodeIds", rows)
    mismatched = [(r, g, e) for r, g, e in zip(rows, got, expected, strict=True) if g != e]
    assert not mismatched, f"{len(mismatched)}/{len(rows)} differ, first: {mismatched[:3]}"
