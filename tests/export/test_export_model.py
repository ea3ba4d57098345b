"""export_model: every format/quantization measured against Keras, manifest, atomic writes."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from model_builders import decoder_step_inputs, decoder_step_model, padded_tokens, sentiment_model

import rnnkit
from rnnkit import runtime
from rnnkit.errors import ArtifactError, UserError
from rnnkit.export import EXPORTERS, export_model

FP32_TOLERANCE = 1e-4
INT8_TOLERANCE = 0.05
FLOAT16_TOLERANCE = 0.01

# One full export per kind covers every kind on every format (uni/bi and 1/2 layers mixed).
FULL_EXPORTS = [("lstm", False, 1), ("gru", True, 2), ("rnn", True, 1)]


@pytest.fixture(scope="module", params=FULL_EXPORTS, ids=lambda p: f"{p[0]}-bi{p[1]}-{p[2]}")
def full_export(request, tmp_path_factory):
    kind, bidirectional, num_layers = request.param
    model = sentiment_model(kind, bidirectional, num_layers)
    out_dir = tmp_path_factory.mktemp("export") / "sentiment"
    tokens = padded_tokens()
    manifest = export_model(
        {"model": model},
        out_dir,
        app="classifier",
        tflite_shapes={"model": {"tokens": (2, 12)}},
        parity_inputs={"model": [{"tokens": tokens}, {"tokens": tokens[2:, :4]}]},
        assets={"labels.json": ["neg", "neu", "pos"], "raw.bin": b"\x00\x01"},
        manifest_extra={"labels": ["neg", "neu", "pos"]},
    )
    return out_dir, manifest, model, tokens


def test_parity_figures_within_bounds(full_export):
    _, manifest, _, _ = full_export
    parity = manifest["parity"]["model"]
    assert parity["saved_model"]["none"] < FP32_TOLERANCE
    assert parity["onnx"]["none"] < FP32_TOLERANCE
    assert parity["tflite"]["none"] < FP32_TOLERANCE
    assert parity["onnx"]["int8"] < INT8_TOLERANCE
    assert parity["tflite"]["int8"] < INT8_TOLERANCE
    assert parity["tflite"]["float16"] < FLOAT16_TOLERANCE


def test_files_and_manifest(full_export):
    out_dir, manifest, _, _ = full_export
    for name in (
        "model.onnx",
        "model.int8.onnx",
        "model.tflite",
        "model.int8.tflite",
        "model.float16.tflite",
        "manifest.json",
        "assets/labels.json",
        "assets/raw.bin",
    ):
        assert (out_dir / name).is_file(), name
    assert (out_dir / "saved_model" / "model" / "saved_model.pb").is_file()
    on_disk = json.loads((out_dir / "manifest.json").read_text())
    assert on_disk == json.loads(json.dumps(manifest))
    assert manifest["format_version"] == rnnkit.EXPORT_FORMAT_VERSION
    assert manifest["rnnkit_version"] == rnnkit.__version__
    assert manifest["padding"] == "right"
    assert manifest["app"] == "classifier" and manifest["labels"] == ["neg", "neu", "pos"]
    graph = manifest["graphs"]["model"]
    assert graph["inputs"] == [{"name": "tokens", "dtype": "int32", "shape": [None, None]}]
    assert graph["outputs"] == [{"name": "logits", "dtype": "float32", "shape": [None, 3]}]
    assert graph["tflite"]["inputs"] == {"tokens": [2, 12]}
    assert graph["tflite"]["max_length"] == 12
    assert graph["onnx"]["recurrent_ops"]
    assert {"onnx", "onnxruntime", "keras"} <= set(manifest["libraries"])
    assert not [p for p in out_dir.parent.iterdir() if p.name.startswith(".")]


def test_saved_model_serving_signature(full_export):
    out_dir, _, model, tokens = full_export
    loaded = tf.saved_model.load(str(out_dir / "saved_model" / "model"))
    result = loaded.signatures["serving_default"](tokens=tf.constant(tokens))
    np.testing.assert_allclose(result["logits"].numpy(), model(tokens), atol=FP32_TOLERANCE)


def test_tflite_runtime_chunks_large_batches(full_export):
    """Batch 4 > fixed batch 2: the runtime runs two chunks; same answer as ONNX."""
    out_dir, _, model, tokens = full_export
    expected = np.asarray(model(tokens))
    tflite = runtime.load(out_dir, backend="tflite").run("model", {"tokens": tokens})
    np.testing.assert_allclose(tflite["logits"], expected, atol=FP32_TOLERANCE)


def test_seq2seq_graphs_and_extra_signature(tmp_path):
    decoder = decoder_step_model("lstm")
    feeds = decoder_step_inputs("lstm")
    import keras

    source = keras.Input((None,), dtype="int32", name="source")
    embedded = keras.layers.Embedding(20, 8, mask_zero=True)(source)
    encoded = keras.layers.LSTM(8, return_sequences=True, name="encoded")(embedded)
    encoder = keras.Model(source, encoded, name="encoder")

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32, name="source")])
    def encode_lengths(source):
        return {"lengths": tf.reduce_sum(tf.cast(source > 0, tf.int32), axis=1)}

    manifest = export_model(
        {"encoder": encoder, "decoder_step": decoder},
        tmp_path / "translation",
        app="seq2seq",
        quantize=("none",),
        tflite_shapes={
            "encoder": {"source": (2, 8)},
            "decoder_step": {
                "token": (2, 1),
                "state_h": (2, 8),
                "state_c": (2, 8),
                "encoder_outputs": (2, 8, 8),
                "encoder_mask": (2, 8),
            },
        },
        parity_inputs={
            "encoder": [{"source": padded_tokens((6, 3, 1), max_len=6)}],
            "decoder_step": [feeds],
        },
        signatures={"encoder": {"lengths": encode_lengths}},
    )
    for graph in ("encoder", "decoder_step"):
        for fmt in ("saved_model", "onnx", "tflite"):
            assert manifest["parity"][graph][fmt]["none"] < FP32_TOLERANCE, (graph, fmt)
    assert manifest["graphs"]["encoder"]["saved_model"]["signatures"] == [
        "lengths",
        "serving_default",
    ]
    loaded = tf.saved_model.load(str(tmp_path / "translation" / "saved_model" / "encoder"))
    lengths = loaded.signatures["lengths"](source=tf.constant([[4, 5, 0]], tf.int32))
    assert lengths["lengths"].numpy().tolist() == [2]
    # decoder outputs in manifest order, names preserved through every format
    names = [o["name"] for o in manifest["graphs"]["decoder_step"]["outputs"]]
    assert names == ["logits", "new_state_h", "new_state_c"]
    tflite = runtime.load(tmp_path / "translation", backend="tflite")
    assert sorted(tflite.run("decoder_step", feeds)) == sorted(names)


def _tiny_export(out_dir, **kwargs):
    return export_model(
        {"model": sentiment_model("gru")},
        out_dir,
        formats=("onnx",),
        quantize=("none",),
        **kwargs,
    )


def test_export_is_atomic_when_an_exporter_fails(tmp_path, monkeypatch):
    out_dir = tmp_path / "exp"
    _tiny_export(out_dir, manifest_extra={"run": "old"})
    before = sorted(os.listdir(out_dir))

    def failing(name, model, target, options):
        (target / "half-written.tflite").write_bytes(b"partial")
        raise RuntimeError("converter exploded")

    monkeypatch.setitem(EXPORTERS, "broken", failing)
    with pytest.raises(RuntimeError, match="converter exploded"):
        export_model(
            {"model": sentiment_model("gru")},
            out_dir,
            formats=("onnx", "broken"),
            quantize=("none",),
            manifest_extra={"run": "new"},
        )
    assert sorted(os.listdir(out_dir)) == before
    assert json.loads((out_dir / "manifest.json").read_text())["run"] == "old"
    assert sorted(os.listdir(tmp_path)) == ["exp"]  # no temporary directory left behind


def test_export_replaces_previous_directory(tmp_path):
    out_dir = tmp_path / "exp"
    _tiny_export(out_dir, manifest_extra={"run": "old"})
    (out_dir / "stale.txt").write_text("from the old export")
    _tiny_export(out_dir, manifest_extra={"run": "new"})
    assert json.loads((out_dir / "manifest.json").read_text())["run"] == "new"
    assert not (out_dir / "stale.txt").exists()
    assert sorted(os.listdir(tmp_path)) == ["exp"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"formats": ("onnx", "pytorch")}, "formats"),
        ({"quantize": ("int4",)}, "quantize"),
        ({"parity_inputs": {"decoder": []}}, "parity_inputs"),
        ({"formats": ("tflite",), "tflite_shapes": {"model": {"ids": (1, 4)}}}, "ids"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, message):
    options = {"formats": ("onnx",), "quantize": ("none",), **kwargs}
    with pytest.raises(ValueError, match=message):
        export_model({"model": sentiment_model("rnn")}, tmp_path / "x", **options)
    assert not (tmp_path / "x").exists()


def test_parity_input_longer_than_tflite_shape_is_reported(tmp_path):
    with pytest.raises(UserError, match=r"parity_inputs\['model'\]\[0\].*maximum 4"):
        export_model(
            {"model": sentiment_model("rnn")},
            tmp_path / "x",
            formats=("tflite",),
            quantize=("none",),
            tflite_shapes={"model": {"tokens": (1, 4)}},
            parity_inputs={"model": [{"tokens": padded_tokens()}]},
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_manifest_breaking_the_schema_is_refused_and_nothing_is_replaced(tmp_path):
    out_dir = tmp_path / "exp"
    _tiny_export(out_dir, manifest_extra={"run": "old"})
    with pytest.raises(ArtifactError, match=r"manifest: missing required field `translation`"):
        _tiny_export(out_dir, app="translation")  # no `translation` section
    assert json.loads((out_dir / "manifest.json").read_text())["run"] == "old"
    assert sorted(os.listdir(tmp_path)) == ["exp"]


def test_load_validates_the_manifest(tmp_path):
    out_dir = tmp_path / "exp"
    _tiny_export(out_dir)
    manifest = json.loads((out_dir / "manifest.json").read_text())
    manifest["padding"] = "left"
    (out_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match=r"manifest\.padding: must be one of \['right'\]"):
        runtime.load(out_dir)


def test_tokenizer_assets_get_a_tokenizer_config(tmp_path):
    from rnnkit.text import Tokenizer

    tokenizer = Tokenizer.train(["a good film", "a bad film"], kind="word")
    path = tokenizer.save(tmp_path / "tok" / "source_tokenizer.json")
    manifest = _tiny_export(tmp_path / "exp", assets={"source_tokenizer.json": path})
    assert manifest["assets"] == ["source_tokenizer.json", "source_tokenizer_config.json"]
    config = json.loads((tmp_path / "exp" / "assets" / "source_tokenizer_config.json").read_text())
    assert config["tokenizer_file"] == "source_tokenizer.json"
    assert (config["unk_token"], config["pad_token"]) == ("<unk>", "<pad>")
    assert config["add_bos_token"] is False and config["add_eos_token"] is False
    vocab = json.loads(path.read_text())["model"]["vocab"]
    assert vocab[config["unk_token"]] == 1 and vocab[config["pad_token"]] == 0


def test_int8_exports_state_the_batch_dependence(tmp_path):
    manifest = export_model({"model": sentiment_model("gru")}, tmp_path / "exp",
                            formats=("onnx",), quantize=("none", "int8"))
    assert "batch" in manifest["quantization_notes"]["int8"]
    assert "quantization_notes" not in _tiny_export(tmp_path / "plain")


def test_tflite_length_buckets_are_signatures_chosen_per_input(tmp_path):
    model = sentiment_model("gru", True)
    tokens = padded_tokens()  # (4, 7) right-padded
    manifest = export_model(
        {"model": model}, tmp_path / "exp", formats=("tflite",), quantize=("none", "int8"),
        tflite_shapes={"model": {"tokens": (2, 12)}}, tflite_buckets={"model": {"tokens": [4, 8]}},
        parity_inputs={"model": [{"tokens": tokens}, {"tokens": tokens[:, :3]}]})
    section = manifest["graphs"]["model"]["tflite"]
    assert [b["inputs"]["tokens"] for b in section["buckets"]] == [[2, 4], [2, 8], [2, 12]]
    assert manifest["parity"]["model"]["tflite"]["none"] < FP32_TOLERANCE
    for quantization, tolerance in (("none", FP32_TOLERANCE), ("int8", INT8_TOLERANCE)):
        loaded = runtime.load(tmp_path / "exp", backend="tflite", quantization=quantization)
        graph = loaded._graphs["model"]
        for width, bucket in ((3, 0), (4, 0), (7, 1), (12, 2)):
            feeds = {"tokens": np.pad(tokens, ((0, 0), (0, 12)))[:, :width]}
            assert graph.bucket_for(feeds) == bucket
            expected = model(feeds["tokens"], training=False)
            got = loaded.run("model", feeds)
            assert np.abs(np.asarray(expected) - next(iter(got.values()))).max() < tolerance
    with pytest.raises(ValueError, match="tflite_buckets"):
        export_model({"model": model}, tmp_path / "bad", formats=("tflite",),
                     tflite_shapes={"model": {"tokens": (2, 12)}},
                     tflite_buckets={"model": {"tokens": [12]}})
    assert not (tmp_path / "bad").exists()


def test_tflite_buckets_map_every_named_output(tmp_path):
    import keras

    tokens_in = keras.Input((None,), dtype="int32", name="tokens")
    hidden = keras.layers.GRU(4, return_sequences=True)(
        keras.layers.Embedding(20, 4, mask_zero=True)(tokens_in))
    zeta = keras.layers.Dense(3, name="zeta")(hidden)  # model order zeta, alpha; sorted: alpha
    alpha = keras.layers.Dense(2, name="alpha")(hidden[:, -1])
    model = keras.Model(tokens_in, [zeta, alpha])
    export_model({"model": model}, tmp_path / "exp", formats=("tflite",),
                 tflite_shapes={"model": {"tokens": (1, 8)}},
                 tflite_buckets={"model": {"tokens": [3]}})
    loaded = runtime.load(tmp_path / "exp", backend="tflite")
    for width in (2, 6):
        feeds = {"tokens": padded_tokens(lengths=[width], max_len=width)}
        expected = dict(zip(("zeta", "alpha"), model(feeds["tokens"], training=False),
                            strict=True))
        got = loaded.run("model", feeds)
        assert sorted(got) == ["alpha", "zeta"]
        for key, value in expected.items():
            assert got[key].shape == tuple(value.shape)
            assert np.abs(np.asarray(value) - got[key]).max() < FP32_TOLERANCE


def test_rebuild_an_existing_export_from_its_weights(tmp_path):
    from rnnkit.export.rebuild import rebuild_tflite

    model = sentiment_model("lstm", True)
    tokens = padded_tokens()
    out_dir = tmp_path / "exp"
    export_model({"model": model}, out_dir, formats=("saved_model", "tflite"),
                 quantize=("none", "int8"), tflite_shapes={"model": {"tokens": (1, 12)}})
    before = runtime.load(out_dir, backend="tflite").run("model", {"tokens": tokens})
    with pytest.raises(UserError, match="does not reproduce"):
        rebuild_tflite(out_dir, "model", sentiment_model("lstm", True, seed=5),
                       [{"tokens": tokens}], buckets={"tokens": [4, 8]})
    section = rebuild_tflite(out_dir, "model", model, [{"tokens": tokens}],
                             buckets={"tokens": [4, 8]})
    assert [b["inputs"]["tokens"] for b in section["buckets"]] == [[1, 4], [1, 8], [1, 12]]
    manifest = runtime.load_manifest(out_dir)
    assert manifest["graphs"]["model"]["tflite"]["buckets"] == section["buckets"]
    assert set(manifest["parity"]["model"]["tflite"]) == {"none", "int8"}
    assert manifest["parity"]["model"]["tflite"]["none"] < FP32_TOLERANCE
    after = runtime.load(out_dir, backend="tflite")
    assert after._graphs["model"].bucket_for({"tokens": tokens[:, :4]}) == 0
    assert after.max_length() == 12
    got = after.run("model", {"tokens": tokens})
    assert np.abs(got["logits"] - before["logits"]).max() < FP32_TOLERANCE
    assert not [p for p in os.listdir(out_dir) if p.startswith(".")]
    with pytest.raises(ValueError, match="tflite_buckets"):
        rebuild_tflite(out_dir, "model", model, [{"tokens": tokens}], buckets={"tokens": [12]})
    section = rebuild_tflite(out_dir, "model", model, [{"tokens": tokens}],
                             shapes={"tokens": (1, None)})
    assert "buckets" not in section and section["max_length"] is None
    long = np.pad(tokens, ((0, 0), (0, 20)))
    got = runtime.load(out_dir, backend="tflite").run("model", {"tokens": long})
    assert np.abs(got["logits"] - np.asarray(model(long, training=False))).max() < FP32_TOLERANCE


def test_tflite_with_a_dynamic_length_axis_runs_any_length(tmp_path):
    model = sentiment_model("gru", True, 2)
    tokens = padded_tokens()
    manifest = export_model(
        {"model": model}, tmp_path / "exp", formats=("tflite",), quantize=("none", "int8"),
        tflite_shapes={"model": {"tokens": (2, None)}},
        parity_inputs={"model": [{"tokens": tokens}, {"tokens": tokens[:, :3]}]})
    section = manifest["graphs"]["model"]["tflite"]
    assert section["inputs"]["tokens"] == [2, None] and section["max_length"] is None
    assert manifest["parity"]["model"]["tflite"]["none"] < FP32_TOLERANCE
    for quantization, tolerance in (("none", FP32_TOLERANCE), ("int8", INT8_TOLERANCE)):
        loaded = runtime.load(tmp_path / "exp", backend="tflite", quantization=quantization)
        assert loaded.max_length() is None
        for width in (3, 30, 7):  # grows, then shrinks: the input is resized per call
            feeds = {"tokens": np.pad(tokens, ((0, 0), (0, 30)))[:, :width]}
            got = loaded.run("model", feeds)["logits"]
            expected = np.asarray(model(feeds["tokens"], training=False))
            assert got.shape == expected.shape and np.abs(got - expected).max() < tolerance
    with pytest.raises(ValueError, match="fixed batch"):
        export_model({"model": model}, tmp_path / "bad", formats=("tflite",),
                     tflite_shapes={"model": {"tokens": (None, 8)}})
