"""Sentiment app: default-data parsing (offline fixture), model masking, CLI errors, an
end-to-end tiny run (train → evaluate → export → runtime predict == Keras predict), and the
shipped export in exported/sentiment."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "sentiment"
SHIPPED = ROOT / "exported" / "sentiment"

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


# ------------------------------------------------------------------------------ default data


def test_default_data_parses_offline_from_the_cache(monkeypatch):
    from apps.sentiment.data import fetch_corpus, load_default_splits

    monkeypatch.setenv("RNNKIT_CACHE", str(FIXTURE))
    corpus = fetch_corpus()  # already "cached": no download
    assert corpus == FIXTURE / "hutto_ICWSM_2014"
    splits, info = load_default_splits(0.5, lexicon_examples=False)
    total = sum(len(s) for s in splits.values())
    assert total + info["neutral_dropped"] == 200  # every fixture line is used or neutral
    assert info["read"]["bad"] == {}
    assert set(info["per_source"]) == {"tweets", "movieReviewSnippets",
                                       "amazonReviewSnippets", "nytEditorialSnippets"}
    for split in splits.values():
        assert set(split.labels) <= {"negative", "positive"}
    # Fixed split: the same ids land in the same split every time.
    again, _ = load_default_splits(0.5, lexicon_examples=False)
    assert again["test"].ids == splits["test"].ids
    assert not set(splits["train"].ids) & set(splits["test"].ids)


def test_rating_labels_drop_the_neutral_band():
    from apps.sentiment.data import rating_label

    assert rating_label(0.51) == "positive"
    assert rating_label(-0.6) == "negative"
    assert rating_label(0.5) is None and rating_label(-0.5) is None and rating_label(0.0) is None


def test_lexicon_examples_only_go_to_train(monkeypatch):
    from apps.sentiment.data import load_default_splits

    monkeypatch.setenv("RNNKIT_CACHE", str(FIXTURE))
    splits, info = load_default_splits(0.5, lexicon_examples=True)
    assert info["lexicon_examples_in_train"] > 0
    assert any(i.startswith("lexicon:") for i in splits["train"].ids)
    assert not any(i.startswith("lexicon:") for i in splits["test"].ids + splits["validation"].ids)
    # Lexicon words keep hard targets (no score); corpus sentences carry their mean rating.
    for example_id, score in zip(splits["train"].ids, splits["train"].scores, strict=True):
        assert (score is None) == example_id.startswith("lexicon:")


def test_neutral_sentences_are_soft_training_examples_only(monkeypatch):
    from apps.sentiment.config import SentimentConfig
    from apps.sentiment.data import load_default_splits
    from apps.sentiment.task import training_targets

    monkeypatch.setenv("RNNKIT_CACHE", str(FIXTURE))
    plain, _ = load_default_splits(0.5, lexicon_examples=False)
    splits, info = load_default_splits(0.5, lexicon_examples=False, neutral_examples=True)
    neutral = splits["train_neutral"]
    assert len(neutral) == info["neutral_examples_in_train"] > 0
    assert all(abs(score) <= 0.5 for score in neutral.scores)
    # Validation and test (and the labelled train split) are exactly the binary ones.
    for name in ("train", "validation", "test"):
        assert splits[name].ids == plain[name].ids
        assert all(abs(score) > 0.5 for score in splits[name].scores)
    assert not set(neutral.ids) & set(plain["train"].ids + plain["validation"].ids
                                      + plain["test"].ids)
    slope = SentimentConfig().soft_target_slope
    targets = training_targets(neutral, ["negative", "positive"], slope)
    expected = 1.0 / (1.0 + np.exp(-slope * np.asarray(neutral.scores)))
    np.testing.assert_allclose(targets[:, 1], expected, rtol=1e-6)
    np.testing.assert_allclose(targets.sum(-1), 1.0, rtol=1e-6)
    hard = training_targets(splits["train"], ["negative", "positive"])
    assert set(np.unique(hard)) == {0.0, 1.0}
    assert hard[:, 1].tolist() == [float(label == "positive") for label in splits["train"].labels]


def test_text_dataset_scores_follow_subset_extend_and_jsonl(tmp_path):
    from rnnkit.data.text import TextDataset, read_jsonl

    rated = TextDataset()
    rated.append("a", "good", "positive", score=2.5)
    rated.append("b", "bad", "negative", score=-1.0)
    unrated = TextDataset(["c"], ["meh"], ["negative"])
    unrated.extend(rated)
    assert unrated.scores == [None, 2.5, -1.0]
    assert unrated.subset([2, 0]).scores == [-1.0, None]
    assert TextDataset(["x"], ["y"], ["z"]).subset([0]).scores is None
    unrated.to_jsonl(tmp_path / "d.jsonl")
    lines = [json.loads(line) for line in (tmp_path / "d.jsonl").read_text().splitlines()]
    assert "score" not in lines[0] and lines[1]["score"] == 2.5
    assert read_jsonl(tmp_path / "d.jsonl")[0].texts == ["meh", "good", "bad"]


def test_negation_pairs_are_well_formed():
    from apps.sentiment.data import LABELS, NEGATION_PAIRS

    assert len(NEGATION_PAIRS) == 20
    for a, label_a, b, label_b in NEGATION_PAIRS:
        assert a != b and label_a != label_b
        assert {label_a, label_b} == set(LABELS)


# ------------------------------------------------------------------------------ distillation


class _ConstantModel:
    """Stands in for a trained teacher: the same probabilities for every row."""

    output_names = ["probabilities"]

    def __init__(self, positive: float):
        self.positive = positive

    def __call__(self, batch, training=False):
        rows = np.asarray(batch).shape[0]
        return {"probabilities": np.tile([1.0 - self.positive, self.positive],
                                         (rows, 1)).astype(np.float32)}


def test_distill_targets_average_the_teachers_and_skip_finished_ones(tmp_path):
    from apps.sentiment.config import SentimentConfig
    from apps.sentiment.task import _distill_targets

    config = SentimentConfig(distill_teachers=3, seed=10)
    rows = [[4, 5, 6], [7], [8, 9]]
    train_y = np.array([[0, 1], [1, 0], [0.3, 0.7]], np.float32)
    val_rows, val_y = [[4], [5, 6]], np.array([[0, 1], [1, 0]], np.float32)
    calls = []

    def fit_model(seed, targets, fit_dir):
        calls.append((seed, fit_dir.name))
        np.testing.assert_array_equal(targets, train_y)  # teachers learn the usual targets
        return _ConstantModel({11: 0.9, 12: 0.6, 13: 0.3}[seed]), {}

    mean, info = _distill_targets(config, tmp_path, fit_model, rows, train_y, val_rows, val_y)
    assert calls == [(11, "teacher_1"), (12, "teacher_2"), (13, "teacher_3")]
    np.testing.assert_allclose(mean, np.tile([0.4, 0.6], (3, 1)), atol=1e-6)
    assert [t["seed"] for t in info["teachers"]] == [11, 12, 13]
    # Teachers 1 and 2 say "positive" for both validation rows (1 of 2 right), teacher 3
    # "negative"; their mean (0.6) says positive.
    assert [t["val_accuracy"] for t in info["teachers"]] == [0.5, 0.5, 0.5]
    assert info["teacher_ensemble_val_accuracy"] == 0.5

    # Started again (e.g. after a kill): finished teachers are not trained again.
    (tmp_path / "teachers" / "teacher_3" / "train_probabilities.npy").unlink()
    calls.clear()
    again, _ = _distill_targets(config, tmp_path, fit_model, rows, train_y, val_rows, val_y)
    assert calls == [(13, "teacher_3")]
    np.testing.assert_allclose(again, mean, atol=1e-6)


def test_bad_distillation_settings_are_rejected(tmp_path):
    from apps.sentiment import TASK
    from apps.sentiment.config import SentimentConfig
    from rnnkit.errors import UserError

    with pytest.raises(UserError, match="distill_alpha"):
        TASK.train(SentimentConfig(distill_teachers=2, distill_alpha=1.5), tmp_path / "run")
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------------------------- model


@pytest.mark.parametrize("pooling", ["attention", "max", "mean", "last"])
def test_pooling_respects_the_mask(pooling):
    from apps.sentiment.config import SentimentConfig
    from apps.sentiment.model import build_model

    config = SentimentConfig(pooling=pooling, units=4, embedding_dim=4, attention_units=3,
                             kind="gru")
    model = build_model(config, vocab_size=20, num_classes=3)
    short = np.array([[5, 6, 7]], dtype=np.int32)
    padded = np.array([[5, 6, 7, 0, 0, 0]], dtype=np.int32)
    out_short, out_padded = model(short), model(padded)
    np.testing.assert_allclose(out_short["probabilities"], out_padded["probabilities"], atol=1e-6)
    if pooling == "attention":
        weights = np.asarray(out_padded["attention"])
        assert np.all(weights[0, 3:] == 0.0)
        np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-6)


def test_lexicon_valence_follows_the_tokenizer_vocabulary(tmp_path):
    from apps.sentiment.data import lexicon_valence

    lexicon = tmp_path / "lexicon.txt"
    lexicon.write_text("good\t1.9\t0.9\t[2, 2]\nBAD\t-2.5\t0.5\t[-2, -3]\n"
                       "broken line\nawful\tx\t1\t[]\nsuper\t5.0\t0\t[4]\n")
    valence = lexicon_valence(lexicon, ["<pad>", "good", "bad", "table", "super", "awful"])
    np.testing.assert_allclose(valence, [0.0, 0.475, -0.625, 0.0, 1.0, 0.0])
    cased = lexicon_valence(lexicon, ["bad", "BAD"], lowercase=False)
    np.testing.assert_allclose(cased, [0.0, -0.625])


def test_lexicon_channel_is_frozen_and_exports_with_parity(tmp_path):
    from apps.sentiment.config import SentimentConfig
    from apps.sentiment.model import build_model
    from rnnkit.export import export_model

    config = SentimentConfig(units=4, embedding_dim=4, attention_units=3, pooling="max")
    valence = np.linspace(-1, 1, 20).astype(np.float32)
    model = build_model(config, vocab_size=20, num_classes=2, lexicon_valence=valence)
    layer = model.get_layer("lexicon_valence")
    assert not layer.trainable and not layer.trainable_weights
    np.testing.assert_allclose(layer.get_weights()[0][:, 0], valence)
    # Padding stays masked through the concatenated channels (Keras and every export).
    tokens = np.array([[3, 17, 5, 0, 0]], dtype=np.int32)
    before = np.asarray(model(tokens)["probabilities"])
    np.testing.assert_allclose(np.asarray(model(tokens[:, :3])["probabilities"]), before,
                               atol=1e-6)
    # The channel reaches the output: flipping one token's prior changes the prediction.
    flipped = valence.copy()
    flipped[17] = -flipped[17]
    layer.set_weights([flipped[:, None]])
    assert np.abs(np.asarray(model(tokens)["probabilities"]) - before).max() > 1e-6
    manifest = export_model({"model": model}, tmp_path / "out", formats=("onnx", "tflite"),
                            quantize=("none",),
                            parity_inputs={"model": [{"token_ids": np.array(
                                [[3, 17, 5, 0, 0], [4, 4, 9, 12, 1]], dtype=np.int32)}]},
                            tflite_shapes={"model": {"token_ids": (1, 5)}})
    assert manifest["parity"]["model"]["onnx"]["none"] < 1e-5
    assert manifest["parity"]["model"]["tflite"]["none"] < 1e-5
    with pytest.raises(ValueError, match="one value per token id"):
        build_model(config, vocab_size=21, num_classes=2, lexicon_valence=valence)


def test_bad_pooling_is_rejected():
    from apps.sentiment.config import SentimentConfig
    from apps.sentiment.model import build_model

    with pytest.raises(ValueError, match="`pooling` must be one of"):
        build_model(SentimentConfig(pooling="median"), 10, 2)


# --------------------------------------------------------------------------------------- CLI


def test_cli_missing_data_file_exits_2_with_one_line(tmp_path, capsys):
    from rnnkit.cli import main

    code = main(["sentiment", "train", "--data", str(tmp_path / "missing.csv"),
                 "--run-dir", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == [f"error: Data file not found: {tmp_path / 'missing.csv'}"]
    assert not (tmp_path / "run").exists()


def test_cli_bad_config_value_and_bad_run_dir(tmp_path, capsys):
    from rnnkit.cli import main

    assert main(["sentiment", "train", "--set", "pooling=median"]) == 2
    assert "`pooling` must be one of" in capsys.readouterr().err
    assert main(["sentiment", "evaluate", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: ")


# ------------------------------------------------------------------------------ end to end

TINY = {"epochs": 1, "units": 8, "embedding_dim": 8, "attention_units": 8, "vocab_size": 300,
        "pooling": "attention",
        "min_frequency": 1, "max_length": 24, "batch_size": 32, "text_column": "review",
        "label_column": "sentiment", "labels": ["negative", "positive"]}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from apps.sentiment import TASK
    from rnnkit.config import load_config

    run_dir = tmp_path_factory.mktemp("sentiment") / "run"
    config = load_config(TASK.config_class, None, TINY)
    assert config.lexicon_feature  # user data gets the lexicon channel too (from the cache)
    old_cache = os.environ.get("RNNKIT_CACHE")
    os.environ["RNNKIT_CACHE"] = str(FIXTURE)
    try:
        metrics = TASK.train(config, run_dir, data=FIXTURE / "reviews.csv")
    finally:
        if old_cache is None:
            os.environ.pop("RNNKIT_CACHE")
        else:
            os.environ["RNNKIT_CACHE"] = old_cache
    return run_dir, metrics


@pytest.mark.slow
def test_tiny_run_train_evaluate_export_predict(tiny_run, tmp_path):
    from apps.sentiment import TASK
    from apps.sentiment.runtime import SentimentPredictor, encode_texts
    from rnnkit.text import Tokenizer

    run_dir, train_metrics = tiny_run
    assert train_metrics["epochs_run"] == 1
    info = json.loads((run_dir / "run.json").read_text())
    assert info["app"] == "sentiment" and info["data"]["read"]["bad"] == {
        "empty_text": 1, "unknown_label": 1, "missing_label": 1, "bad_encoding": 1}
    for name in ("model.keras", "config.json", "assets/tokenizer.json", "assets/labels.json",
                 "history.csv", "data/test.jsonl"):
        assert (run_dir / name).exists(), name

    metrics = TASK.evaluate(run_dir)
    for key in ("accuracy", "macro_f1", "baseline_accuracy", "baseline_macro_f1",
                "negation_pairs_correct", "baseline_negation_pairs_correct"):
        assert key in metrics
    assert set(metrics["model"]["per_class"]) == {"negative", "positive"}
    assert (run_dir / "plots" / "confusion_matrix.png").stat().st_size > 0
    recorded = json.loads((run_dir / "metrics.json").read_text())
    assert recorded["evaluate"]["accuracy"] == metrics["accuracy"]
    assert recorded["train"]["epochs_run"] == 1
    splits = json.loads((run_dir / "data" / "splits.json").read_text())
    assert splits["test"]["examples"] == metrics["examples"]

    out = tmp_path / "export"
    manifest = TASK.export(run_dir, out, ["onnx", "tflite"], ["none", "int8"])
    assert "Loop" not in manifest["onnx_op_types"]
    assert manifest["agreement"]["vs_keras"]["onnx/none"] == 1.0
    assert manifest["agreement"]["vs_keras"]["tflite/none"] == 1.0
    assert manifest["graphs"]["model"]["tflite"]["inputs"]["token_ids"] == [1, None]
    assert manifest["agreement"]["examples"] == metrics["examples"]
    assert manifest["parity"]["model"]["onnx"]["none"] < 1e-4

    texts = ["I loved it, wonderful!", "not good at all", "",
             "a very long sentence " * 20, "Ünïcödé — and emoji 😀"]
    keras_results = TASK.predict(run_dir, texts, {"explain": True})
    for backend in ("onnx", "tflite"):
        runtime_results = TASK.predict(out, texts, {"backend": backend, "explain": True})
        assert [r["label"] for r in runtime_results] == [r["label"] for r in keras_results]
        for ours, theirs in zip(runtime_results, keras_results, strict=True):
            for label, p in theirs["probabilities"].items():
                assert abs(ours["probabilities"][label] - p) < 1e-4
            assert [t for t, _ in ours["attention"]] == [t for t, _ in theirs["attention"]]
    # Runtime tokenization == training tokenization (same asset, same cut, same empty rule).
    trained = Tokenizer.load(run_dir / "assets" / "tokenizer.json")
    predictor = SentimentPredictor(out, "onnx")
    assert predictor.max_length == TINY["max_length"]
    assert predictor.encode(texts) == encode_texts(trained, texts, TINY["max_length"])
    assert predictor.encode([""]) == [[1]]


@pytest.mark.slow
def test_cli_predict_on_run_dir(tiny_run, capsys):
    from rnnkit.cli import main

    run_dir, _ = tiny_run
    assert main(["sentiment", "predict", str(run_dir), "great movie", "--explain", "--json",
                 "--backend", "keras"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["label"] in ("negative", "positive")
    assert [t for t, _ in result["attention"]] == ["great", "movie"]


# ------------------------------------------------------------------------ shipped artifacts


def _shipped_manifest() -> dict:
    path = SHIPPED / "manifest.json"
    if not path.is_file():
        pytest.skip("exported/sentiment has not been produced yet")
    return json.loads(path.read_text())


def test_shipped_export_is_small_and_has_no_loop():
    manifest = _shipped_manifest()
    size = sum(p.stat().st_size for p in SHIPPED.rglob("*") if p.is_file())
    assert size <= 15 * 1024 * 1024
    assert "Loop" not in manifest["onnx_op_types"]
    assert manifest["app"] == "sentiment" and manifest["labels"] == ["negative", "positive"]
    assert (SHIPPED / "assets" / "tokenizer.json").is_file()


def test_every_shipped_artifact_reproduces_its_manifest_metrics():
    from apps.sentiment.runtime import SentimentPredictor
    from rnnkit.data.text import read_jsonl

    manifest = _shipped_manifest()
    recorded = manifest["metrics"]["test_sample_accuracy"]
    sample, report = read_jsonl(SHIPPED / recorded["file"])
    assert len(sample) == recorded["examples"] == report.used
    checked = 0
    for variant, accuracy in recorded.items():
        if "/" not in variant:
            continue
        backend, quantization = variant.split("/")
        predictor = SentimentPredictor(SHIPPED, backend, quantization)
        assert predictor.accuracy(sample.texts, sample.labels) == pytest.approx(accuracy, abs=1e-9)
        checked += 1
    assert checked == 5  # onnx none/int8, tflite none/int8/float16
    # The full test split was also checked at export: every artifact agrees with Keras.
    for variant, share in manifest["agreement"]["vs_keras"].items():
        assert share >= (1.0 if variant.endswith("/none") else 0.99), variant


# ---------------------------------------------------- string-in SavedModel signatures (TF Serving)

TRICKY_TEXTS = [
    "I loved it, wonderful!!! ...",
    "Don't  say  it's \"fine\" -- it isn't; rock'n'roll 'quoted' words'",
    "Curly don’t and ’leading and trailing’ apostrophes",
    "",
    "   \t\n ",
    "?!.,;:()[]{}<>@#$%^&*_~`|\\/",
    "CAFÉ café Café naïve Straße STRASSE ΟΔΟΣ İstanbul",
    "ＦＵＬＬＷＩＤＴＨ ﬁne ligature … ellipsis ½ x² ① ℌ",
    "non\u00a0breaking\u2003spaces\u3000and\u200bzero width\u0085nel",
    "emoji 😀👍🏽 and 中文字符 and العربية and हिन्दी",
    "unknown zyzzyva qwertyuiop words",
    "literal <unk> and <s> and </s> and <pad> and <S> tokens",
    "snake_case_word 3.14 1,000 2nd 4th",
    "a very long sentence " * 20,
    "great",
]


def _tiny_tokenizer():
    from rnnkit.text import Tokenizer

    corpus = ["i loved it , wonderful !", "don't say it's fine", "it isn't rock'n'roll",
              "don’t café naïve straße strasse οδοσ", "fine ... x2 1 full width", "great movie",
              "a very long sentence", "snake_case_word 3 . 14 2nd", "😀 中文字符 emoji and"]
    return Tokenizer.train(corpus, kind="word")


def test_in_graph_word_tokenizer_gives_the_python_ids():
    import tensorflow as tf

    from apps.sentiment.runtime import encode_texts
    from apps.sentiment.serving import InGraphWordTokenizer, measure_agreement

    tokenizer = _tiny_tokenizer()
    max_length = 12
    in_graph = InGraphWordTokenizer(tokenizer, max_length)
    ids, lengths = in_graph(tf.constant(TRICKY_TEXTS))
    expected = encode_texts(tokenizer, TRICKY_TEXTS, max_length)
    assert lengths.numpy().tolist() == [len(row) for row in expected]
    for row, want in zip(ids.numpy().tolist(), expected, strict=True):
        assert row == want + [0] * (ids.shape[1] - len(want))
    assert ids.dtype == tf.int32 and ids.shape[1] == max_length  # the long text is cut
    by_text = dict(zip(TRICKY_TEXTS, expected, strict=True))
    assert by_text[""] == [1] and by_text["   \t\n "] == [1]  # empty → [<unk>]
    assert 2 in by_text["literal <unk> and <s> and </s> and <pad> and <S> tokens"]
    # Non-ASCII words are really looked up (not all <unk>): café, naïve, straße, οδοσ.
    unicode_row = by_text["CAFÉ café Café naïve Straße STRASSE ΟΔΟΣ İstanbul"]
    assert sum(token_id != 1 for token_id in unicode_row) >= 7
    # A batch of only empty texts still gives (B, 1); an empty batch gives (0, 1).
    assert in_graph(tf.constant(["", ""]))[0].numpy().tolist() == [[1], [1]]
    assert in_graph(tf.constant([], tf.string))[0].shape == (0, 1)
    # The documented deviation: NFKC composition across characters is not done.
    report = measure_agreement(tokenizer, ["cafe\u0301", "café"], max_length)
    assert report["texts_normalized_differently"] == 1 and report["mismatched"] == 1


def test_in_graph_tokenizer_refuses_other_kinds():
    from apps.sentiment.serving import InGraphWordTokenizer
    from rnnkit.text import Tokenizer

    chars = Tokenizer.train(["abc"], kind="char")
    with pytest.raises(ValueError, match="must be an rnnkit 'word' tokenizer"):
        InGraphWordTokenizer(chars, 8)


def _tiny_run_dir(root: Path, tokenizer) -> Path:
    """A finished-looking run directory (tiny untrained model) for `TASK.export`."""
    from apps.sentiment.config import SentimentConfig
    from apps.sentiment.model import build_model
    from rnnkit.data.text import TextDataset
    from rnnkit.task import RunDir

    config = SentimentConfig(units=4, embedding_dim=4, attention_units=4, max_length=12)
    model = build_model(config, vocab_size=tokenizer.vocab_size, num_classes=2)
    run = RunDir.create("sentiment", config, root / "run",
                        info={"labels": ["negative", "positive"]})
    model.save(run.file("model.keras"))
    tokenizer.save(run.file("assets", "tokenizer.json"))
    texts = [t for t in TRICKY_TEXTS if t.strip()]
    labels = ["negative", "positive"] * len(texts)
    run.record_split("test", TextDataset([f"t{i}" for i in range(len(texts))], texts,
                                         labels[: len(texts)]).records())
    return run.path


def test_saved_model_classify_text_matches_keras(tmp_path):
    import keras
    import tensorflow as tf

    from apps.sentiment import TASK
    from apps.sentiment.runtime import encode_texts, pad_rows

    tokenizer = _tiny_tokenizer()
    run_dir = _tiny_run_dir(tmp_path, tokenizer)
    manifest = TASK.export(run_dir, tmp_path / "export", ["saved_model"], ["none"])
    assert manifest["graphs"]["model"]["saved_model"]["signatures"] == [
        "classify_text", "serving_default", "tokenize_text"]
    entry = manifest["text_signatures"]
    assert entry["graph"] == "model"
    assert [o["name"] for o in entry["classify_text"]["outputs"]] == [
        "probabilities", "label_index", "label"]
    assert entry["agreement"]["token_ids_equal"] == 1.0
    assert entry["agreement"]["probabilities_max_abs_diff_vs_keras"] < 1e-5
    saved = json.loads((tmp_path / "export" / "manifest.json").read_text())
    assert saved["text_signatures"]["agreement"] == entry["agreement"]

    import apps.sentiment.model  # noqa: F401 - registers the custom layers

    model = keras.saving.load_model(run_dir / "model.keras", compile=False)
    loaded = tf.saved_model.load(str(tmp_path / "export" / "saved_model" / "model"))
    rows = encode_texts(tokenizer, TRICKY_TEXTS, 12)
    reference = np.asarray(model(pad_rows(rows), training=False)["probabilities"])
    out = loaded.signatures["classify_text"](text=tf.constant(TRICKY_TEXTS))
    np.testing.assert_allclose(out["probabilities"].numpy(), reference, atol=1e-5, rtol=0)
    assert out["label_index"].numpy().tolist() == reference.argmax(-1).tolist()
    assert [s.decode() for s in out["label"].numpy()] == [
        ["negative", "positive"][i] for i in reference.argmax(-1)]
    tokens = loaded.signatures["tokenize_text"](text=tf.constant(TRICKY_TEXTS))
    assert tokens["lengths"].numpy().tolist() == [len(r) for r in rows]
    np.testing.assert_array_equal(tokens["token_ids"].numpy(), pad_rows(rows))


def test_no_string_signature_for_char_and_bpe_tokenizers():
    from apps.sentiment.exporting import _text_signatures
    from rnnkit.text import Tokenizer

    chars = Tokenizer.train(["good movie", "bad film"], kind="char")
    signatures, entry, owners = _text_signatures(None, chars, ["negative", "positive"], 12,
                                                ["saved_model", "onnx"])
    assert signatures == {} and owners == {} and entry["graph"] is None
    assert "'char' tokenizer" in entry["reason"]
    bpe = Tokenizer.train(["good movie", "bad film"] * 5, kind="bpe", vocab_size=40)
    assert "'bpe' tokenizer" in _text_signatures(None, bpe, ["a", "b"], 12, ["saved_model"])[1][
        "reason"]
