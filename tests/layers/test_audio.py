"""LogMelFrontend and the length/mask layers: numpy reference, masking, serialization, export."""

import keras
import numpy as np
import pytest

from rnnkit.layers.audio import (
    LengthsToMask,
    LogMelFrontend,
    ScaleLengths,
    ZeroMasked,
    log_mel_reference,
    mel_filterbank,
)


def _sine(seconds=0.5, frequency=440.0, rate=16000):
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def test_log_mel_of_sine_matches_numpy_reference():
    wave = _sine()
    features = np.asarray(LogMelFrontend()(wave[None]))[0]
    reference = log_mel_reference(wave)
    assert features.shape == reference.shape == (wave.size // 160, 80)
    loud = reference > -5.0  # where the sine's energy is: a tight relative check
    np.testing.assert_allclose(features[loud], reference[loud], atol=1e-3)
    np.testing.assert_allclose(features, reference, atol=5e-3)
    # The peak mel bin sits at 440 Hz.
    centers = np.argmax(mel_filterbank(80, 257, 16000, 20.0, 7600.0), axis=0) * 16000 / 512
    assert abs(centers[int(np.argmax(features[10]))] - 440) < 60


def test_frames_follow_the_right_padding_rule():
    layer = LogMelFrontend(num_mel_bins=16)
    short, long = _sine(0.2), _sine(0.45, 1000.0)
    batch = np.zeros((2, long.size), np.float32)
    batch[0, :short.size], batch[1] = short, long
    together = np.asarray(layer(batch))
    alone = np.asarray(layer(short[None]))
    frames = layer.num_frames(short.size)
    assert alone.shape[1] == frames
    np.testing.assert_allclose(together[0, :frames], alone[0], atol=1e-4)


def test_spec_augment_only_in_training():
    layer = LogMelFrontend(num_mel_bins=32, freq_mask_count=2, freq_mask_width=8,
                           time_mask_count=2, time_mask_width=10, seed=3)
    plain = LogMelFrontend(num_mel_bins=32)
    wave = np.stack([_sine(), _sine(frequency=900.0)])
    inference = np.asarray(layer(wave, training=False))
    np.testing.assert_allclose(inference, np.asarray(plain(wave)), atol=1e-6)
    augmented = np.asarray(layer(wave, training=True))
    assert augmented.shape == inference.shape
    assert np.mean(augmented != inference) > 0.01


def test_argument_validation_names_the_argument():
    with pytest.raises(ValueError, match="frame_step"):
        LogMelFrontend(frame_length=100, frame_step=200)
    with pytest.raises(ValueError, match="fft_length"):
        LogMelFrontend(frame_length=400, fft_length=256)
    with pytest.raises(ValueError, match="rounding"):
        ScaleLengths(2, rounding="round")


def test_lengths_layers():
    lengths = np.array([0, 5, 7], np.int32)
    np.testing.assert_array_equal(ScaleLengths(3, "ceil")(lengths), [0, 2, 3])
    np.testing.assert_array_equal(ScaleLengths(3, "floor")(lengths), [0, 1, 2])
    sequence = np.ones((3, 6, 2), np.float32)
    mask = np.asarray(LengthsToMask()([np.array([0, 2, 6]), sequence]))
    np.testing.assert_array_equal(mask.sum(axis=1), [0, 2, 6])
    zeroed = np.asarray(ZeroMasked()([sequence, mask]))
    np.testing.assert_array_equal(zeroed[:, :, 0], mask.astype(np.float32))


def _frontend_model():
    waveform = keras.Input((None,), name="waveform")
    lengths = keras.Input((), dtype="int32", name="lengths")
    features = LogMelFrontend(num_mel_bins=24, name="frontend")(waveform)
    frame_lengths = ScaleLengths(160, name="frame_lengths")(lengths)
    mask = LengthsToMask()([frame_lengths, features])
    out = ZeroMasked()([features, mask])
    return keras.Model([waveform, lengths], [out, frame_lengths])


def test_serialization_round_trip(tmp_path):
    model = _frontend_model()
    wave = _sine(0.1)[None]
    lengths = np.array([wave.shape[1]], np.int32)
    path = tmp_path / "frontend.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded.predict_on_batch([wave, lengths])[0],
                               model.predict_on_batch([wave, lengths])[0], atol=1e-6)
    config = LogMelFrontend(num_mel_bins=10, time_mask_count=1).get_config()
    assert LogMelFrontend.from_config(config).get_config() == config


def test_one_training_step_with_augmentation():
    waveform = keras.Input((None,))
    features = LogMelFrontend(num_mel_bins=8, freq_mask_count=1, time_mask_count=1, seed=1)(waveform)
    output = keras.layers.Dense(1)(keras.layers.GlobalAveragePooling1D()(features))
    model = keras.Model(waveform, output)
    model.compile("adam", "mse")
    history = model.fit(np.random.default_rng(0).normal(size=(4, 1600)).astype("float32"),
                        np.zeros((4, 1)), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_frontend_converts_to_onnx_and_tflite(tmp_path):
    from rnnkit.export import export_model
    from rnnkit.runtime import load

    model = _frontend_model()
    rng = np.random.default_rng(0)
    batch = rng.normal(scale=0.1, size=(2, 3200)).astype(np.float32)
    batch[1, 2000:] = 0.0
    inputs = {"waveform": batch, "lengths": np.array([3200, 2000], np.int32)}
    manifest = export_model(
        {"model": model}, tmp_path / "export", formats=("onnx", "tflite"), quantize=(),
        tflite_shapes={"model": {"waveform": (1, 3200), "lengths": (1,)}},
        parity_inputs={"model": [inputs]},
    )
    parity = manifest["parity"]["model"]
    assert parity["onnx"]["none"] < 1e-3
    assert parity["tflite"]["none"] < 1e-3
    onnx_out = load(tmp_path / "export", "onnx").run("model", inputs)
    expected = model.predict_on_batch([inputs["waveform"], inputs["lengths"]])[0]
    np.testing.assert_allclose(list(onnx_out.values())[0], expected, atol=1e-3)


def test_weightless_frontend_matches_the_weight_version():
    rng = np.random.default_rng(1)
    wave = np.stack([_sine(), rng.normal(scale=0.05, size=8000).astype(np.float32)])
    settings = dict(num_mel_bins=40, lower_edge_hertz=60.0, upper_edge_hertz=7600.0)
    with_weights = LogMelFrontend(**settings)
    weightless = LogMelFrontend(weightless=True, **settings)
    expected = np.asarray(with_weights(wave))
    got = np.asarray(weightless(wave))
    assert len(with_weights.weights) == 2 and not weightless.weights
    loud = expected > -5.0
    np.testing.assert_allclose(got[loud], expected[loud], atol=2e-3)
    np.testing.assert_allclose(got, expected, atol=5e-3)
    config = weightless.get_config()
    assert config["weightless"] is True
    assert LogMelFrontend.from_config(config).get_config() == config


def test_weightless_frontend_stays_float_in_int8_exports(tmp_path):
    """No frontend constant reaches a quantizer: int8 ONNX and TFLite give float features."""
    from rnnkit.export import export_model

    waveform = keras.Input((None,), name="waveform")
    features = LogMelFrontend(num_mel_bins=24, weightless=True, name="frontend")(waveform)
    model = keras.Model(waveform, features)
    rng = np.random.default_rng(0)
    batch = (rng.normal(scale=0.1, size=(1, 3200)) * np.linspace(0.01, 1, 3200)).astype(
        np.float32)
    manifest = export_model(
        {"model": model}, tmp_path / "export", formats=("onnx", "tflite"), quantize=("int8",),
        tflite_shapes={"model": {"waveform": (1, 3200)}},
        parity_inputs={"model": [{"waveform": batch}]},
        quantize_exclude={"model": ("frontend",)},
    )
    parity = manifest["parity"]["model"]
    assert parity["onnx"]["int8"] < 1e-2 and parity["tflite"]["int8"] < 1e-2
    # The basis is computed in the graph: no 400 x 514 constant in the files.
    assert (tmp_path / "export" / "model.onnx").stat().st_size < 200_000
    assert (tmp_path / "export" / "model.tflite").stat().st_size < 200_000
