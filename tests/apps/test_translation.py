"""Translation app: readers, generated data and splits, decoding rules, end-to-end, shipped."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from apps.translation.config import TranslationConfig
from rnnkit.errors import UserError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "translation"
SHIPPED = Path(__file__).resolve().parents[2] / "exported" / "translation"


# ---------------------------------------------------------------------------- readers
def test_read_tsv_pairs_tatoeba_anki_format():
    from rnnkit.data.pairs import read_pairs, read_tsv_pairs

    pairs = read_tsv_pairs(FIXTURES / "anki_deu.tsv")
    assert pairs[0] == ("Go.", "Geh.")  # attribution column ignored
    assert pairs[-1] == ("I won.", "Ich hab gewonnen.")  # 2-column line accepted
    assert len(pairs) == 5  # blank line skipped
    assert read_pairs(FIXTURES / "anki_deu.tsv") == pairs


def test_read_parallel_files_and_directory():
    from rnnkit.data.pairs import read_pairs

    pairs = read_pairs(FIXTURES / "parallel")
    assert pairs == [("Germany", "Deutschland"), ("three", "drei"),
                     ("March 5, 2024", "5. März 2024")]
    assert read_pairs(FIXTURES / "parallel" / "source.txt",
                      FIXTURES / "parallel" / "target.txt") == pairs


def test_reader_errors(tmp_path):
    from rnnkit.data.pairs import read_pairs, read_parallel_files

    with pytest.raises(UserError, match=r"bad.tsv:2: expected at least 2"):
        read_pairs(FIXTURES / "bad.tsv")
    with pytest.raises(FileNotFoundError):
        read_pairs(tmp_path / "missing.tsv")
    (tmp_path / "a.txt").write_text("one\ntwo\n")
    (tmp_path / "b.txt").write_text("eins\n")
    with pytest.raises(UserError, match="same number of lines"):
        read_parallel_files(tmp_path / "a.txt", tmp_path / "b.txt")
    (tmp_path / "empty.tsv").write_text("\n")
    with pytest.raises(UserError, match="no sentence pairs"):
        read_pairs(tmp_path / "empty.tsv")


def test_read_freedict_examples_from_a_dictd_file(tmp_path):
    import gzip

    from rnnkit.data.pairs import read_freedict_examples

    entry = "\n".join([
        "house /haʊs/",
        "Haus <n>",
        '   "The house is red."  - Das Haus ist rot., Das Haus ist rötlich.',
        '   "My house."  - Mein Haus.',
        '   "not a sentence"  - kein Satz.',
        '   "The house is red."  - Das Haus ist rot.',
        '   "Where is it?"  - Wo ist es?',
        '   "No German end."  - Kein Ende',
        "",
    ])
    path = tmp_path / "tiny.dict.dz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write(entry)
    assert read_freedict_examples(path) == [
        ("The house is red.", "Das Haus ist rot."),
        ("My house.", "Mein Haus."),
        ("Where is it?", "Wo ist es?"),
    ]
    with pytest.raises(FileNotFoundError, match="apt-get install dict-freedict-eng-deu"):
        read_freedict_examples(tmp_path / "missing.dict.dz")


# .ci/run installs Debian's dict-freedict-eng-deu, so CI reads the real file too.
@pytest.mark.skipif(not Path("/usr/share/dictd/freedict-eng-deu.dict.dz").is_file(),
                    reason="dict-freedict-eng-deu is not installed")
def test_read_freedict_examples():
    from rnnkit.data.pairs import read_freedict_examples

    pairs = read_freedict_examples()
    assert len(pairs) > 5000
    assert all(e[0].isupper() and e[-1] in ".?!" and g for e, g in pairs[:200])


def test_pair_batches_shift_targets_and_pad_to_the_bucket_boundaries():
    pytest.importorskip("tensorflow")
    from apps.translation.task import pair_batches

    sources = [[5, 6], [7, 8, 9, 10, 11], [4], [5, 5, 5]]
    targets = [[2, 5, 3], [2, 6, 6, 6, 3], [2, 3], [2, 9, 9, 3]]
    config = TranslationConfig(batch_size=2, bucket_boundaries=[3])
    batches = [(x["source_ids"].numpy(), x["target_in"].numpy(), y.numpy())
               for x, y in pair_batches(sources, targets, config, shuffle=False)]
    # bucket 0 (longer side <= 3): pairs 0 and 2; bucket 1: pairs 1 and 3, padded to their longest
    assert [b[0].tolist() for b in batches] == [[[5, 6, 0], [4, 0, 0]],
                                                [[7, 8, 9, 10, 11], [5, 5, 5, 0, 0]]]
    assert batches[0][1].tolist() == [[2, 5], [2, 3]] and batches[0][2].tolist() == [[5, 3], [3, 0]]
    assert batches[1][1].tolist() == [[2, 6, 6, 6], [2, 9, 9, 3]]
    assert batches[1][2].tolist() == [[6, 6, 6, 3], [9, 9, 3, 0]]
    with pytest.raises(ValueError, match="<s> and </s>"):
        pair_batches([[5]], [[2]], config, shuffle=False)


# ----------------------------------------------------------------- generated data
def test_generated_pairs_are_deterministic_and_heldout_is_disjoint():
    from apps.translation.data import generate_pairs, split_pairs

    atoms, pairs = generate_pairs(600, seed=7)
    assert generate_pairs(600, seed=7)[1] == pairs
    assert ("Germany", "Deutschland") in atoms
    splits = split_pairs(pairs, 0.1, 0.1, seed=7, always_train=atoms)
    train_sources = {s for s, _ in splits.train}
    assert splits.test and not train_sources & {s for s, _ in splits.test}
    assert not train_sources & {s for s, _ in splits.valid}
    assert all(a in splits.train for a in atoms)


def test_generated_pairs_english_to_spanish_and_bad_target():
    from apps.translation.data import generate_pairs

    atoms, pairs = generate_pairs(300, seed=3, target="es")
    assert ("Germany", "Alemania") in atoms and ("Spain", "España") in atoms
    dates = [t for s, t in pairs if re.match(r"(\w+day, )?(January|March|May|July|October) "
                                             r"\d+, \d{4}$", s)]
    assert dates and all(re.search(r"\d+ de \w+ de \d{4}$", t) for t in dates), dates[:3]
    assert any(t.endswith("kilómetros") for _, t in pairs)
    with pytest.raises(UserError, match="target_language.*'fr'"):
        generate_pairs(10, target="fr")


def _fake_corpus(root: Path, count: int = 400) -> Path:
    from apps.translation.data import corpus_path

    rows = [(f"Sentence number {i} is here.", f"La frase número {i} está aquí.")
            for i in range(count)]
    path = corpus_path()
    assert str(path).startswith(str(root))
    path.parent.mkdir(parents=True)
    path.write_text("".join(f"{e}\t{s}\tfake\n" for e, s in rows), encoding="utf-8")
    return path


def test_default_data_is_the_cached_corpus_plus_a_generated_share(tmp_path, monkeypatch):
    from apps.translation.data import load_splits

    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path))
    _fake_corpus(tmp_path)
    config = TranslationConfig(generated_share=0.25, test_fraction=0.1, valid_fraction=0.1)
    splits = load_splits(config)
    real = {s for s, _ in splits.train} | {s for s, _ in splits.valid}
    assert all(s.startswith("Sentence number") for s, _ in splits.test) and splits.test
    assert splits.test_generated and not any(
        s.startswith("Sentence number") for s, _ in splits.test_generated)
    generated_train = [s for s, _ in splits.train if not s.startswith("Sentence number")]
    # 100 generated composites (+ at most 100 names), split like the rest
    assert 80 <= len(generated_train) <= 200
    assert not real & {s for s, _ in splits.test_generated}
    assert not {s for s, _ in splits.train} & {s for s, _ in splits.test}
    # max_train_pairs: a subset of the same training split; the held-out splits unchanged
    small = load_splits(TranslationConfig(generated_share=0.25, test_fraction=0.1,
                                          valid_fraction=0.1, max_train_pairs=50))
    assert len(small.train) == 50 and set(small.train) <= set(splits.train)
    assert small.test == splits.test and small.valid == splits.valid
    # without the share: the corpus alone
    alone = load_splits(TranslationConfig(generated_share=0.0))
    assert all(s.startswith("Sentence number") for s, _ in alone.train)
    assert alone.test_generated == []
    with pytest.raises(UserError, match="generated_share"):
        load_splits(TranslationConfig(generated_share=1.5))
    with pytest.raises(UserError, match="dataset"):
        load_splits(TranslationConfig(dataset="tatoeba"))


def test_without_apertium_the_default_data_says_how_to_install_or_switch(tmp_path):
    """No cached corpus and no apertium on PATH: `rnnkit translation train` prints one
    `error:` line naming the install command and the generated-data option; exit 2."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "RNNKIT_CACHE": str(tmp_path), "PATH": str(tmp_path),
           "PYTHONPATH": str(root)}
    result = subprocess.run([sys.executable, "-m", "rnnkit.cli", "translation", "train",
                             "--run-dir", str(tmp_path / "run")], capture_output=True,
                            text=True, env=env, cwd=root, timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr[-2000:]
    assert "apt-get install apertium apertium-eng-spa" in lines[0]
    assert "--set dataset=generated" in lines[0]


def test_sizes_follow_the_number_of_training_pairs():
    from apps.translation.recipe import SIZE_RULES, resolve_sizes

    config = TranslationConfig()
    small, sized = resolve_sizes(config, 10_000)
    assert sized["source_vocab_size"] == SIZE_RULES[0][1] and small.dropout_rate == 0.2
    assert sized["dropout_rate"] == 0.2 and len(sized) == 7
    medium, _ = resolve_sizes(config, 70_000)  # the shipped model's size
    assert (medium.source_vocab_size, medium.embedding_dim, medium.encoder_units,
            medium.decoder_units, medium.attention_units, medium.dropout_rate) == (
        1000, 64, 128, 128, 128, 0.1)
    large, _ = resolve_sizes(config, 200_000)
    assert large.encoder_units > medium.encoder_units
    assert large.target_vocab_size > medium.target_vocab_size
    fixed, sized = resolve_sizes(TranslationConfig(encoder_units=32, dropout_rate=0.0), 200_000)
    assert fixed.encoder_units == 32 and fixed.dropout_rate == 0.0
    assert "encoder_units" not in sized and "dropout_rate" not in sized


def test_decoding_is_chosen_on_validation_bleu():
    from apps.translation.recipe import choose_decoding, validation_pairs

    class Fake:  # beam width 4 with penalty 1.0 gives the references, the rest does not
        def translate(self, sources, method, beam_width=1, length_penalty=0.0):
            good = method == "beam" and beam_width == 4 and length_penalty == 1.0
            return [{"translation": s.upper() if good else "x"} for s in sources]

    pairs = [(f"la frase numero {i} es larga", f"LA FRASE NUMERO {i} ES LARGA") for i in range(12)]
    chosen = choose_decoding(Fake(), pairs)
    assert (chosen["beam_width"], chosen["length_penalty"]) == (4, 1.0)
    assert chosen["bleu"] == 100.0 and chosen["scores"]["1/0.0"] < 1
    assert len(chosen["scores"]) == 1 + 3 * 3
    assert len(validation_pairs(pairs, 5)) == 5 and validation_pairs(pairs, 0) == pairs


# --------------------------------------------------------- decoding rules (TF-free)
class _FakeTokenizer:
    unk_id, start_id, end_id = 1, 2, 3

    def encode(self, text):
        return [4 + (ord(c) % 5) for c in text.replace(" ", "")]

    def tokens(self, text):
        return list(text.replace(" ", ""))

    def decode(self, ids):
        return " ".join(str(i) for i in ids)

    def id_to_token(self, i):
        return str(i)


def _fake_translator(long_input="truncate"):
    from apps.translation.translator import Translator

    def encode(ids):
        return ids[..., None].astype(np.float32), [np.zeros((len(ids), 2), np.float32)]

    def step(token, states, values, mask):
        logits = np.zeros((len(token), 6), np.float32)
        step_index = states[0][:, 0].astype(int)
        logits[np.arange(len(token)), np.where(step_index >= 2, 3, 5)] = 5.0
        weights = mask / mask.sum(-1, keepdims=True)
        return logits, [states[0] + 1], weights

    return Translator(encode, step, _FakeTokenizer(), _FakeTokenizer(), max_source_length=4,
                      max_target_length=10, start_id=2, end_id=3, long_input=long_input)


def test_long_inputs_truncate_with_warning_or_error():
    translator = _fake_translator()
    with pytest.warns(UserWarning, match="max_source_length"):
        results = translator.translate(["abcdefgh", "ab"])
    assert [r["truncated"] for r in results] == [True, False]
    assert results[0]["translation"] == "5 5"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert translator.translate(["ab"], "beam", beam_width=2)[0]["translation"] == "5 5"
    with pytest.raises(UserError, match="max_source_length=4"):
        _fake_translator("error").translate(["abcdefgh"])


def test_translator_bad_inputs():
    translator = _fake_translator()
    with pytest.raises(UserError, match="list of sentences"):
        translator.translate("abc")
    with pytest.raises(UserError, match="method"):
        translator.translate(["abc"], method="sampling")
    with pytest.raises(UserError, match="string"):
        translator.translate([3])
    assert translator.translate([]) == []
    with_attention = translator.translate(["abc"], with_attention=True)[0]
    assert with_attention["attention"].shape == (3, 3)


# ------------------------------------------------------------------- end to end
TINY = {"dataset": "generated", "num_pairs": 800, "epochs": 2, "embedding_dim": 16, "encoder_units": 16,
        "decoder_units": 32, "attention_units": 16, "source_vocab_size": 200,
        "target_vocab_size": 200, "eval_limit": 24, "num_samples": 2, "num_heatmaps": 1,
        "batch_size": 32}


@pytest.mark.slow
def test_train_evaluate_export_runtime_end_to_end(tmp_path):
    pytest.importorskip("tensorflow")
    from apps.translation import TASK
    from apps.translation.translator import TranslationPredictor
    from rnnkit.config import load_config
    from rnnkit.task import RunDir

    config = load_config(TASK.config_class, None, {**TINY, "attention": "bahdanau"})
    summary = TASK.train(config, tmp_path / "run")
    assert summary["train_pairs"] > 0 and (tmp_path / "run" / "decoder_step.keras").is_file()
    run = RunDir(tmp_path / "run")
    test_pairs = run.split("test")
    assert summary["test_pairs"] == len(test_pairs) > 0 and set(test_pairs[0]) == {"source",
                                                                                  "target"}
    metrics = TASK.evaluate(tmp_path / "run")
    for key in ("bleu_greedy", "bleu_beam", "chrf_greedy", "chrf_beam"):
        assert 0.0 <= metrics[key] <= 100.0
    assert metrics["num_pairs"] == min(len(test_pairs), TINY["eval_limit"])
    assert set(run.metrics()) == {"train", "evaluate"}
    assert run.metrics("evaluate")["bleu_beam"] == metrics["bleu_beam"]
    assert Path(metrics["attention_heatmaps"][0]).is_file()
    # evaluate --data scores every pair of the file, beyond eval_limit.
    rows = [test_pairs[i % len(test_pairs)] for i in range(TINY["eval_limit"] + 6)]
    (tmp_path / "user.tsv").write_text("".join(f"{r['source']} {i}\t{r['target']}\n"
                                               for i, r in enumerate(rows)))
    assert TASK.evaluate(tmp_path / "run", data=tmp_path / "user.tsv")["num_pairs"] == len(rows)
    metrics = TASK.evaluate(tmp_path / "run")  # the recorded split's metrics again
    manifest = TASK.export(tmp_path / "run", tmp_path / "export", ["onnx", "tflite"], ["none"])
    agreement = manifest["agreement"]
    assert agreement["compared"] == "translation"
    assert agreement["examples"] == min(len(test_pairs), 200)
    # Validation BLEU per epoch, and the decoding chosen on validation is the export's.
    assert [p["epoch"] for p in summary["val_bleu_curve"]] == [1, 2]
    chosen = summary["decoding_chosen_on_validation"]
    assert manifest["translation"]["beam_width"] == chosen["beam_width"]
    assert manifest["translation"]["length_penalty"] == chosen["length_penalty"]
    assert manifest["metrics"]["test_split"]["bleu_beam"] == metrics["bleu_beam"]
    for key in ("onnx/none", "tflite/none"):
        assert agreement["vs_keras"][key] == 1.0
        assert manifest["metrics"]["heldout_sample_variants"][key]["same_as_keras_beam"] == 1.0
    # Long inputs on fixed-shape TFLite: truncated with a warning, never a crash.
    translator = TranslationPredictor(tmp_path / "export", "tflite")
    with pytest.warns(UserWarning, match="max_source_length"):
        result = translator.translate(["Germany and France " * 40], "beam", beam_width=2)
    assert result[0]["truncated"]
    predictions = TASK.predict(tmp_path / "export", ["Germany"], {"backend": "onnx"})
    assert isinstance(predictions[0]["translation"], str)


# ------------------------------------------------- string-in SavedModel signatures
# A tiny run that still translates with varied outputs (short, long, cut at max length).
TINY_TEXT = {**TINY, "epochs": 6, "learning_rate": 0.01, "num_heatmaps": 0}
TEXT_CASES = ["", "   ", "<unk>", "Germany and <unk> France", "Germany " * 30,
              "ünseen ẞ 😀 chars\tand\nlines", "12345 67.89", "  March  5,\t2024  "]


@pytest.fixture(scope="module")
def tiny_text_export(tmp_path_factory):
    pytest.importorskip("tensorflow")
    from apps.translation import TASK
    from rnnkit.config import load_config

    root = tmp_path_factory.mktemp("translation_text")
    TASK.train(load_config(TASK.config_class, None, TINY_TEXT), root / "run")
    manifest = TASK.export(root / "run", root / "export", ["saved_model"], ["none"])
    return root / "run", root / "export", manifest


@pytest.mark.slow
def test_saved_model_translate_text_equals_keras_greedy(tiny_text_export):
    import tensorflow as tf

    from apps.translation.task import KerasTranslator
    from rnnkit.task import RunDir

    run_dir, export_dir, manifest = tiny_text_export
    assert manifest["graphs"]["encoder"]["saved_model"]["signatures"] == [
        "serving_default", "tokenize_text", "translate_text"]
    entry = manifest["text_signatures"]
    assert entry["graph"] == "encoder" and entry["saved_model"] == "saved_model/encoder"
    assert [o["name"] for o in entry["translate_text"]["outputs"]] == [
        "translation", "token_ids", "lengths", "truncated"]
    agreement = entry["agreement"]
    assert agreement["examples"] > 10
    for key in ("source_ids_equal", "translation_equal_to_keras_greedy",
                "target_ids_equal_to_keras_greedy", "truncated_equal"):
        assert agreement[key] == 1.0, key
    saved = json.loads((export_dir / "manifest.json").read_text())
    assert saved["text_signatures"]["agreement"] == agreement

    translator = KerasTranslator(RunDir(run_dir))
    lines = (export_dir / "assets" / "heldout_sample.tsv").read_text().splitlines()
    texts = [line.split("\t")[0] for line in lines] + TEXT_CASES
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = translator.translate(texts, "greedy")
        rows, truncated = translator.encode_sources(texts)
    loaded = tf.saved_model.load(str(export_dir / "saved_model" / "encoder"))
    out = loaded.signatures["translate_text"](text=tf.constant(texts))
    assert out["token_ids"].dtype == tf.int32 and out["lengths"].dtype == tf.int32
    ids, lengths = out["token_ids"].numpy(), out["lengths"].numpy()
    assert ids.shape[1] == max(lengths)
    for index, want in enumerate(expected):
        assert out["translation"][index].numpy().decode() == want["translation"], texts[index]
        assert ids[index, : lengths[index]].tolist() == want["ids"], texts[index]
        assert not ids[index, lengths[index]:].any()
    assert out["truncated"].numpy().tolist() == truncated
    assert len({w["translation"] for w in expected}) > 5  # the outputs really vary
    # tokenize_text: exactly the source ids the Translator feeds the encoder.
    tokens = loaded.signatures["tokenize_text"](text=tf.constant(texts))
    for index, row in enumerate(rows):
        assert tokens["token_ids"][index, : len(row)].numpy().tolist() == row
        assert not tokens["token_ids"][index, len(row):].numpy().any()
    assert tokens["lengths"].numpy().tolist() == [len(row) for row in rows]
    # One text at a time gives the same as in a batch.
    single = loaded.signatures["translate_text"](text=tf.constant(texts[-3:-2]))
    assert single["translation"][0].numpy().decode() == expected[-3]["translation"]


@pytest.mark.slow
def test_translate_text_long_input_error_rule(tiny_text_export):
    import tensorflow as tf

    from apps.translation.serving import TextTranslator
    from apps.translation.task import KerasTranslator
    from rnnkit.task import RunDir

    run_dir, _, _ = tiny_text_export
    translator = KerasTranslator(RunDir(run_dir))
    strict = TextTranslator(translator.encoder, translator.step_model,
                            translator.source_tokenizer,
                            translator.target_tokenizer, translator.max_source_length,
                            translator.max_target_length, long_input="error")
    out = strict.tokenize_text(tf.constant(["Germany"]))
    assert out["truncated"].numpy().tolist() == [False]
    with pytest.raises(tf.errors.InvalidArgumentError, match="max_source_length"):
        strict.translate_text(tf.constant(["Germany", "Germany " * 30]))


def test_text_signatures_skipped_without_saved_model_or_bpe():
    pytest.importorskip("tensorflow")
    from types import SimpleNamespace

    from apps.translation.config import TranslationConfig
    from apps.translation.task import _text_signatures

    bpe, char = SimpleNamespace(kind="bpe"), SimpleNamespace(kind="char")
    config = TranslationConfig()
    translator = SimpleNamespace(source_tokenizer=bpe, target_tokenizer=char)
    signatures, entry, owners = _text_signatures(translator, None, None, config, ["onnx"])
    assert signatures == {} and owners == {} and entry["graph"] is None
    signatures, entry, owners = _text_signatures(translator, None, None, config,
                                                ["saved_model"])
    assert signatures == {} and "target='char'" in entry["reason"]


# ---------------------------------------------------------------- shipped model
@pytest.mark.skipif(not (SHIPPED / "manifest.json").is_file(),
                    reason="exported/translation is not present")
@pytest.mark.parametrize("variant", ["onnx/none", "onnx/int8", "tflite/none", "tflite/int8",
                                     "tflite/float16"])
def test_shipped_model_reproduces_manifest_metrics(variant):
    """TF-free: the shipped export loads in rnnkit.runtime and reproduces the BLEU in its
    manifest on the held-out sample committed beside it."""
    from apps.translation.task import score_translations
    from apps.translation.translator import TranslationPredictor

    manifest = json.loads((SHIPPED / "manifest.json").read_text())
    lines = (SHIPPED / manifest["heldout_sample"]).read_text().splitlines()
    pairs = [line.split("\t") for line in lines]
    assert len(pairs) == manifest["metrics"]["heldout_sample"]["num_pairs"]
    translator = TranslationPredictor(SHIPPED, *variant.split("/"))
    hyps = [r["translation"] for r in translator.translate([s for s, _ in pairs], "greedy")]
    expected = manifest["metrics"]["heldout_sample_variants"][variant]
    scores = score_translations(hyps, [t for _, t in pairs])
    assert scores["bleu"] == pytest.approx(expected["bleu_greedy"], abs=0.01)
    beam = [r["translation"] for r in translator.translate(
        [s for s, _ in pairs], "beam", beam_width=translator.beam_width,
        length_penalty=translator.length_penalty)]
    assert score_translations(beam, [t for _, t in pairs])["bleu"] == pytest.approx(
        expected["bleu_beam"], abs=0.01)
    assert manifest["agreement"]["compared"] == "translation"
    if variant.endswith("/none"):  # fp32: the Keras figure measured at export (same translations)
        assert manifest["agreement"]["vs_keras"][variant] == 1.0
        assert expected["bleu_greedy"] == manifest["metrics"]["heldout_sample"]["bleu_greedy"]
    else:  # int8 / float16 change some translations; the BLEU stays within a point of Keras'
        assert manifest["agreement"]["vs_keras"][variant] >= 0.6
        keras_bleu = manifest["metrics"]["heldout_sample"]["bleu_greedy"]
        assert abs(expected["bleu_greedy"] - keras_bleu) < 1


@pytest.mark.skipif(not (SHIPPED / "manifest.json").is_file(),
                    reason="exported/translation is not present")
def test_shipped_saved_model_translate_text_equals_the_runtime_greedy():
    """The shipped SavedModel's string-in/string-out signature (TF Serving) translates the
    held-out sample exactly as ONNX Runtime's host-side greedy search does."""
    tf = pytest.importorskip("tensorflow")
    from apps.translation.translator import TranslationPredictor

    manifest = json.loads((SHIPPED / "manifest.json").read_text())
    assert manifest["text_signatures"]["agreement"]["translation_equal_to_keras_greedy"] == 1.0
    sources = [line.split("\t")[0] for line in
               (SHIPPED / manifest["heldout_sample"]).read_text().splitlines()[:80]]
    loaded = tf.saved_model.load(str(SHIPPED / "saved_model" / "encoder"))
    out = loaded.signatures["translate_text"](text=tf.constant(sources))
    got = [t.decode("utf-8") for t in out["translation"].numpy()]
    translator = TranslationPredictor(SHIPPED, "onnx")
    assert got == [r["translation"] for r in translator.translate(sources, "greedy")]


@pytest.mark.skipif(not (SHIPPED / "manifest.json").is_file(),
                    reason="exported/translation is not present")
def test_shipped_export_has_every_format_and_fits_the_size_limit():
    """exported/translation holds SavedModel + ONNX (fp32, int8) + TFLite (fp32, int8,
    float16) of both graphs, the vocabularies and the held-out sample, in at most 15 MB."""
    manifest = json.loads((SHIPPED / "manifest.json").read_text())
    for graph in ("encoder", "decoder_step"):
        assert (SHIPPED / "saved_model" / graph / "saved_model.pb").is_file()
        for suffix in (".onnx", ".int8.onnx", ".tflite", ".int8.tflite", ".float16.tflite"):
            assert (SHIPPED / f"{graph}{suffix}").is_file(), f"{graph}{suffix}"
    for name in ("source_tokenizer.json", "target_tokenizer.json", "heldout_sample.tsv"):
        assert (SHIPPED / "assets" / name).is_file()
    total = sum(p.stat().st_size for p in SHIPPED.rglob("*") if p.is_file())
    assert total <= 15 * 10**6, f"exported/translation is {total / 1e6:.1f} MB"
    test_split = manifest["metrics"]["test_split"]
    # English→Spanish on 2,000 held-out pairs of the Apertium corpus (the tutorial recipe: 22.2)
    assert test_split["num_pairs"] >= 2000 and test_split["bleu_greedy"] >= 40.0


def test_spec_reads_the_shipped_manifest_and_names_a_missing_field():
    from apps.translation.spec import TranslationSpec
    from rnnkit.errors import ArtifactError

    manifest = json.loads((SHIPPED / "manifest.json").read_text())
    spec = TranslationSpec.from_manifest(manifest)
    assert (spec.start_id, spec.end_id, spec.max_source_length) == (2, 3, 40)
    del manifest["translation"]["end_id"]
    with pytest.raises(ArtifactError, match="translation.end_id"):
        TranslationSpec.from_manifest(manifest)


def test_predict_on_the_shipped_export_with_beam_and_explain():
    from apps.translation import TASK

    greedy, = TASK.predict(SHIPPED, ["Germany and France"], {"explain": True, "beam_width": 1})
    beam, = TASK.predict(SHIPPED, ["Germany and France"], {"beam_width": 4})
    default, = TASK.predict(SHIPPED, ["Germany and France"])  # the manifest's beam_width (4)
    assert json.loads((SHIPPED / "manifest.json").read_text())["translation"]["beam_width"] == 4
    assert greedy["translation"] == beam["translation"] and beam["score"] < 0
    assert "score" not in greedy and default == beam
    assert greedy["alignment"] and all("->" in pair for pair, _ in greedy["alignment"])
    with pytest.raises(UserError, match="does not take"):
        TASK.predict(SHIPPED, ["Germany"], {"temperature": 1.0})


# ------------------------------------------------------- unknown words are copied
def test_copy_unknown_words_replaces_unk_and_garbled_names_by_the_source_word():
    from apps.translation.translator import copy_unknown_words
    from rnnkit.text import Tokenizer

    texts = ["the house is red", "the cat is here", "a red cat"] * 5
    source = Tokenizer.train(texts, kind="bpe", vocab_size=60, lowercase=False)
    target = Tokenizer.train(["la casa es roja.", "el gato es aqui."] * 5, kind="bpe",
                             vocab_size=60, lowercase=False)
    text = "the Zoë house"
    pieces = source.tokens(text)
    assert "<unk>" in pieces
    unk_position = pieces.index("<unk>")
    # the model emits "la", then <unk> attending to Zoë's <unk> piece, then "casa"
    ids = target.encode("la") + [target.unk_id] + target.encode("casa")
    attention = np.full((len(ids) + 1, len(pieces)), 0.01, np.float32)
    attention[:, 0] = 0.5
    attention[len(target.encode("la")), unk_position] = 0.9
    out = copy_unknown_words(source, target, text, ids, attention)
    assert out == "la Zoë casa"
    # an output word whose pieces attend to the unknown word is replaced (punctuation kept)
    ids = target.encode("la rojaaqui.")
    assert target.unk_id not in ids
    attention = np.zeros((len(ids) + 1, len(pieces)), np.float32)
    attention[:, 0] = 1.0
    start = len(target.encode("la"))
    attention[start:, 0] = 0.0
    attention[start:, unk_position] = 1.0
    assert copy_unknown_words(source, target, text, ids, attention) == "la Zoë."
    # nothing unknown: the plain decoding
    plain = target.encode("la casa")
    assert copy_unknown_words(source, target, "the house", plain,
                              np.ones((len(plain) + 1, 2), np.float32)) == "la casa"


@pytest.mark.skipif(not (SHIPPED / "manifest.json").is_file(),
                    reason="exported/translation is not present")
@pytest.mark.parametrize("backend", ["onnx", "tflite"])
def test_shipped_model_copies_unseen_characters_and_names(backend):
    """Unseen characters, emoji and names: no `<unk>` in any output; names copied (the
    shipped export's tokenizers have no byte fallback: the copy runs on the host)."""
    from apps.translation import TASK

    inputs = ["Zoë's café in Kraków", "I love pizza 🍕 and Jürgen.", "🙂🙂🙂", "ẞ",
              "I met Siobhan and Nguyễn in Reykjavík yesterday.", "Ærøskøbing is in Denmark.",
              "", "   ", "<unk>", "ẞẞ ẞ 😀"]
    results = TASK.predict(SHIPPED, inputs, {"backend": backend})
    outputs = [r["translation"] for r in results]
    assert not any("<unk>" in out for out in outputs), outputs
    assert "Zoë's" in outputs[0] and "Kraków" in outputs[0]
    assert "Jürgen" in outputs[1] and "🍕" in outputs[1]
    assert outputs[2] == "🙂🙂🙂" and outputs[3] == "ẞ"
    assert all(name in outputs[4] for name in ("Siobhan", "Nguyễn", "Reykjavík"))
    assert "Ærøskøbing" in outputs[5]
    # n-best alternatives hold no <unk> either; the raw model output (translate) is unchanged
    beam, = TASK.predict(SHIPPED, inputs[:1], {"backend": backend, "num_return": 3})
    assert all("<unk>" not in h["translation"] for h in beam["n_best"])


def test_time_budget_cosine_decays_over_the_budget_or_the_steps():
    pytest.importorskip("keras")
    from apps.translation.recipe import TimeBudgetCosine

    schedule = TimeBudgetCosine(1e-2, total_steps=1000, minutes=10, warmup_steps=10)
    assert schedule.rate(0, 0.0) == pytest.approx(1e-3)  # warm-up
    assert schedule.rate(10, 0.0) == pytest.approx(1e-2, rel=1e-3)  # the peak
    # half the time gone after 10 % of the steps: the rate is the cosine's half-way value
    assert schedule.rate(100, 300.0) == pytest.approx(1e-2 * (0.05 + 0.95 * 0.5))
    assert schedule.rate(500, 0.0) == pytest.approx(1e-2 * (0.05 + 0.95 * 0.5))  # steps
    assert schedule.rate(100, 600.0) == pytest.approx(1e-2 * 0.05)  # the floor, not below
    assert schedule.rate(100, 9000.0) == pytest.approx(1e-2 * 0.05)
