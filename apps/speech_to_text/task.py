"""speech_to_text tasks: train, evaluate, export, predict (the `AppSpec` callables).

Keras/TensorFlow are imported inside the functions that need them: `predict` on an export
directory runs on `rnnkit.runtime` (ONNX Runtime or LiteRT) without TensorFlow.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.errors import ArtifactError, UserError
from rnnkit.task import Task

from .config import SpeechToTextConfig
from .data import VOCABULARY, SpeechSet, decode_ids, load_splits, pad_batch

APP_NAME = "speech_to_text"
FEATURES_ASSET = "features.json"
VOCABULARY_ASSET = "vocabulary.json"


# --------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------


def error_rates(refs: list[str], hyps: list[str]) -> dict[str, float]:
    """Corpus WER and CER (jiwer through `rnnkit.metrics`)."""
    try:
        from rnnkit.metrics import cer, wer
    except ImportError:  # pragma: no cover - fallback while rnnkit.metrics is missing
        import jiwer

        def wer(r, h):
            return float(jiwer.wer(list(r), list(h)))

        def cer(r, h):
            return float(jiwer.cer(list(r), list(h)))

    return {"wer": float(wer(refs, hyps)), "cer": float(cer(refs, hyps))}


def utterance_wer(ref: str, hyp: str) -> float:
    import jiwer

    if not ref.split():
        return 0.0 if not hyp.split() else 1.0
    return float(jiwer.wer(ref, hyp))


def decode_log_probs(log_probs: np.ndarray, lengths: np.ndarray, beam_width: int = 1,
                     vocabulary=VOCABULARY) -> list[str]:
    """CTC greedy (beam_width 1) or prefix beam search over `(B, T, C)` log-probabilities."""
    from rnnkit.decoding import ctc_greedy_decode, ctc_prefix_beam_search

    texts = []
    if beam_width <= 1:
        for ids in ctc_greedy_decode(log_probs, lengths=lengths, blank_id=0):
            texts.append(decode_ids(ids, vocabulary))
        return texts
    for row in range(log_probs.shape[0]):
        frames = int(lengths[row])
        if frames <= 0:
            texts.append("")
            continue
        result = ctc_prefix_beam_search(log_probs[row, :frames], beam_width=beam_width, blank_id=0)
        best = result[0] if isinstance(result, list) and result else result
        ids = best.ids if hasattr(best, "ids") else best
        texts.append(decode_ids(ids, vocabulary))
    return texts


def _batches_by_length(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    order = np.argsort(lengths, kind="stable")
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def transcribe_keras(model, data: SpeechSet, config, beam_width: int = 1,
                     batch_size: int = 32) -> list[str]:
    """Transcripts of every utterance of `data` with the Keras inference model."""
    texts = [""] * len(data)
    for group in _batches_by_length(data.lengths(), batch_size):
        waveform, lengths = pad_batch([data.waveform(int(i)) for i in group],
                                    multiple=config.frame_step)
        log_probs, logit_lengths = model.predict_on_batch([waveform, lengths])
        for index, text in zip(group, decode_log_probs(np.asarray(log_probs),
                                                     np.asarray(logit_lengths), beam_width), strict=False):
            texts[int(index)] = text
    return texts


def utterance_report(data: SpeechSet, hyps: list[str], count: int = 5) -> dict[str, list]:
    """Best, median and worst utterances by WER."""
    rows = [
        {"reference": data.texts[i], "hypothesis": hyps[i], "wer": utterance_wer(data.texts[i], hyps[i]),
         "source": data.sources[i]}
        for i in range(len(data))
    ]
    ranked = sorted(rows, key=lambda row: (row["wer"], len(row["reference"])))
    middle = max(0, len(ranked) // 2 - count // 2)
    return {"best": ranked[:count], "median": ranked[middle:middle + count],
            "worst": ranked[::-1][:count]}


def _load_run(run_dir: str | Path):
    from rnnkit.config import read_config
    from rnnkit.task import RunDir

    run_dir = Path(run_dir)
    RunDir.open(run_dir, APP_NAME)
    config = read_config(SpeechToTextConfig, run_dir / "config.json")
    model_path = run_dir / "model.keras"
    if not model_path.is_file():
        raise UserError(f"{run_dir} has no model.keras (training did not finish?)")
    import keras

    import rnnkit.layers  # noqa: F401  (registers the custom layers)

    model = keras.saving.load_model(model_path, compile=False)
    return config, model


# --------------------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------------------


def train(config: SpeechToTextConfig, run_dir: str | Path | None = None,
          data: str | Path | None = None) -> dict[str, Any]:
    """Train the CTC model; writes the run directory; returns the test metrics."""

    from rnnkit.training import fit, make_optimizer, prepare_run_dir, set_seed

    from .data import speech_batches
    from .model import build_model, build_training_model, ctc_mean

    if config.batch_size < 1 or config.epochs < 1:
        raise UserError(
            f"`batch_size` and `epochs` must be >= 1. Received: batch_size={config.batch_size}, "
            f"epochs={config.epochs}"
        )
    set_seed(config.seed)
    run_dir = prepare_run_dir(APP_NAME, config, run_dir,
                            extra={"data": str(data) if data else "synthetic"})
    started = time.time()
    splits = load_splits(config, data)
    data_seconds = time.time() - started
    train_set, val_set = splits["train"], splits["val"]
    keep = [i for i in range(len(train_set))
            if 0 < train_set.lengths()[i] <= config.max_seconds * config.sample_rate]
    if len(keep) < len(train_set):
        train_set = train_set.subset(keep)
    if len(train_set) == 0:
        raise UserError("No training utterances left (all empty or longer than max_seconds)")

    model = build_model(config)
    trainer = build_training_model(model)
    train_batches = speech_batches(train_set, config, training=True, seed=config.seed)
    val_batches = speech_batches(val_set, config, training=False)
    steps_per_epoch = config.steps_per_epoch or len(train_batches)
    if config.steps_per_epoch:  # epochs of a fixed step count: cycle through the batches
        train_batches = train_batches.repeat()
    optimizer = make_optimizer(config.learning_rate, clipnorm=config.clipnorm, schedule="cosine",
                             total_steps=steps_per_epoch * config.epochs,
                             warmup_steps=min(200, steps_per_epoch))
    trainer.compile(optimizer=optimizer, loss=ctc_mean, jit_compile=False)
    _write_assets(run_dir, config)

    callbacks = _make_callbacks(model, val_set, config, run_dir / "wer_curve.csv")
    fit(trainer, train_batches, val_batches, run_dir=run_dir, epochs=config.epochs,
        monitor="val_loss", patience=config.patience, tensorboard=False, verbose=2,
        callbacks=callbacks, steps_per_epoch=config.steps_per_epoch or None)
    best = run_dir / "checkpoints" / "best.weights.h5"
    if best.is_file():
        trainer.load_weights(best)
    train_seconds = time.time() - started - data_seconds
    model.save(run_dir / "model.keras")

    test_set = splits["test"]
    hyps = transcribe_keras(model, test_set, config)
    metrics = {
        **error_rates(test_set.texts, hyps),
        "test_utterances": len(test_set),
        "train_utterances": len(train_set),
        "train_seconds": round(train_seconds, 1),
        "data_seconds": round(data_seconds, 1),
        "parameters": int(model.count_params()),
        "examples": utterance_report(test_set, hyps),
    }
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def _write_assets(run_dir: Path, config: SpeechToTextConfig) -> None:
    assets = run_dir / "assets"
    assets.mkdir(exist_ok=True)
    (assets / VOCABULARY_ASSET).write_text(json.dumps(list(VOCABULARY)) + "\n")
    (assets / FEATURES_ASSET).write_text(json.dumps(feature_settings(config), indent=2) + "\n")


def feature_settings(config: SpeechToTextConfig) -> dict[str, Any]:
    return {
        "input": "raw mono float32 waveform in [-1, 1], right-padded with zeros",
        "sample_rate": config.sample_rate,
        "frame_length": config.frame_length,
        "frame_step": config.frame_step,
        "fft_length": config.fft_length,
        "num_mel_bins": config.num_mel_bins,
        "lower_edge_hertz": config.lower_edge_hertz,
        "upper_edge_hertz": config.upper_edge_hertz,
        "blank_id": 0,
        "decoder": "ctc",
    }


def _make_callbacks(model, val_set: SpeechSet, config, curve_path: Path) -> list:
    """A WER-vs-training-time curve (wer_curve.csv) and a wall-clock time limit."""
    import keras

    class TimeLimit(keras.callbacks.Callback):
        """Stop training after the epoch in which `minutes` of training time have passed."""

        def __init__(self, minutes: float):
            super().__init__()
            self.limit = minutes * 60.0
            self.started = time.time()

        def on_epoch_end(self, epoch, logs=None):
            if self.limit > 0 and time.time() - self.started >= self.limit:
                print(f"time limit of {self.limit / 60:.1f} min reached after epoch {epoch + 1}")
                self.model.stop_training = True

    class WERCurve(keras.callbacks.Callback):
        """Append `elapsed_seconds, epoch, val_wer, val_cer` to wer_curve.csv every epoch
        (elapsed = training time, the WER evaluations themselves excluded)."""

        def __init__(self):
            super().__init__()
            self.started = time.time()
            self.eval_seconds = 0.0
            if not curve_path.exists():
                curve_path.write_text("elapsed_seconds,epoch,val_wer,val_cer\n")

        def on_epoch_end(self, epoch, logs=None):
            begin = time.time()
            elapsed = begin - self.started - self.eval_seconds
            hyps = transcribe_keras(model, val_set, config)
            rates = error_rates(val_set.texts, hyps)
            self.eval_seconds += time.time() - begin
            with curve_path.open("a", newline="") as handle:
                csv.writer(handle).writerow([round(elapsed, 1), epoch + 1,
                                           round(rates["wer"], 4), round(rates["cer"], 4)])
            if logs is not None:
                logs["val_wer"] = rates["wer"]
            print(f"epoch {epoch + 1}: val_wer={rates['wer']:.4f} val_cer={rates['cer']:.4f} "
                  f"({elapsed:.0f}s training)")

    callbacks = [TimeLimit(config.max_train_minutes)]
    if config.eval_wer_every_epoch:
        callbacks.insert(0, WERCurve())
    return callbacks


# --------------------------------------------------------------------------------------
# evaluate
# --------------------------------------------------------------------------------------


def evaluate(run_dir: str | Path, data: str | Path | None = None,
             beam_width: int | None = None) -> dict[str, Any]:
    """WER/CER on the held-out split (or user data) + best/median/worst utterances."""
    from .data import synthetic_split

    config, model = _load_run(run_dir)
    if data is None:
        test_set = synthetic_split("test", config.test_size, config)
    else:
        test_set = load_splits(config, data)["val"]
    width = config.beam_width if beam_width is None else beam_width
    hyps = transcribe_keras(model, test_set, config, beam_width=width)
    metrics = {**error_rates(test_set.texts, hyps), "test_utterances": len(test_set),
               "beam_width": width, "examples": utterance_report(test_set, hyps)}
    path = Path(run_dir) / "metrics.json"
    previous = json.loads(path.read_text()) if path.is_file() else {}
    previous.update(metrics)
    path.write_text(json.dumps(previous, indent=2) + "\n")
    return metrics


# --------------------------------------------------------------------------------------
# export
# --------------------------------------------------------------------------------------


def _parity_batch(data: SpeechSet, width: int, count: int = 4) -> dict[str, np.ndarray]:
    """A right-padded batch of mixed lengths (shortest, longest, two between), padded to
    `width` samples: the TFLite model's fixed length, so every format returns the same
    number of frames (the padded frames are masked; `logit_lengths` says which are valid)."""
    order = np.argsort(data.lengths())
    picks = sorted({int(order[0]), int(order[-1]), int(order[len(order) // 3]),
                    int(order[2 * len(order) // 3])})[:count]
    waves = [data.waveform(i)[:width] for i in picks]
    waveform, lengths = pad_batch(waves)
    waveform = np.pad(waveform, [(0, 0), (0, width - waveform.shape[1])])
    return {"waveform": waveform, "lengths": lengths}


def export(run_dir: str | Path, out_dir: str | Path | None = None,
           formats=("saved_model", "onnx", "tflite"), quantize=("int8", "float16"),
           transcript_check: int = 64, sample_size: int = 30) -> dict[str, Any]:
    """Export the run's model with `rnnkit.export`, comparing transcripts of
    `transcript_check` held-out utterances between Keras and every exported backend
    (manifest `transcript_parity`) and writing the held-out sample, all inside the atomic
    export: a failure there leaves any previous export in place."""
    from rnnkit.export import export_model

    config, trained = _load_run(run_dir)
    model = inference_copy(trained, config)
    run_dir = Path(run_dir)
    out_dir = Path(out_dir) if out_dir else run_dir / "export"
    user_data = _run_data(run_dir)
    if user_data is None:
        from .data import synthetic_split

        held = synthetic_split("val", config.val_size, config)
    else:
        held = load_splits(config, user_data)["val"]
    max_samples = int(round(config.max_audio_seconds * config.sample_rate))
    max_samples -= max_samples % config.frame_step
    metrics_path = run_dir / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    manifest_extra = {
        "features": feature_settings(config),
        "vocabulary": f"assets/{VOCABULARY_ASSET}",
        "blank_id": 0,
        "decoder": "ctc_greedy" if config.beam_width <= 1 else "ctc_prefix_beam",
        "beam_width": config.beam_width,
        "max_audio_seconds": max_samples / config.sample_rate,
        "chunking": ("audio longer than max_audio_seconds is cut at the quietest 10 ms within "
                     "the last 2 s of each chunk; chunk transcripts are joined with a space"),
        "min_samples": 400,
        "metrics": {k: metrics[k] for k in ("wer", "cer", "test_utterances", "train_seconds")
                    if k in metrics},
        "wer_curve": _read_wer_curve(run_dir / "wer_curve.csv"),
        "outputs_note": "log_probs (B, T, C) log-softmax, blank 0; logit_lengths (B,) valid frames",
    }
    def finalize(staging: Path, manifest: dict[str, Any]) -> None:
        if transcript_check:
            sample = held.subset(range(min(transcript_check, len(held))))
            manifest["transcript_parity"] = transcript_parity(model, config, staging, sample)
        if sample_size and "onnx" in formats:
            manifest["heldout_sample"] = _write_heldout_sample(run_dir, config, staging,
                                                             sample_size)

    return export_model(
        {"model": model}, out_dir, app=APP_NAME, formats=formats, quantize=quantize,
        tflite_shapes={"model": {"waveform": (1, max_samples), "lengths": (1,)}},
        parity_inputs={"model": [_parity_batch(held, max_samples)]},
        assets={VOCABULARY_ASSET: list(VOCABULARY), FEATURES_ASSET: feature_settings(config)},
        manifest_extra=manifest_extra,
        # int8 ONNX keeps the log-mel frontend float32 (8-bit power spectra ruin log-mels);
        # the frontend holds no weights, so TFLite's dynamic-range int8 leaves it float too.
        quantize_exclude={"model": ("frontend",)},
        finalize=finalize,
    )


def _read_wer_curve(path: Path) -> list[dict[str, float]]:
    """Rows of the run's `wer_curve.csv` (validation WER/CER vs training seconds)."""
    if not path.is_file():
        return []
    with path.open(newline="") as handle:
        return [{key: float(value) for key, value in row.items()} for row in csv.DictReader(handle)]


def _write_heldout_sample(run_dir: Path, config, out_dir: Path, size: int) -> dict[str, Any]:
    """`heldout_sample.npz` beside the model: the first `size` test utterances of at most 3 s
    (int16), with the ONNX transcripts and WER the shipped-model test reproduces."""
    from .data import synthetic_split
    from .transcriber import Transcriber

    if _run_data(run_dir) is not None:
        return {}
    test = synthetic_split("test", config.test_size, config)
    short = [i for i in range(len(test)) if test.lengths()[i] <= 3 * config.sample_rate][:size]
    sample = test.subset(short)
    path = out_dir / "heldout_sample.npz"
    np.savez_compressed(
        path, audio=np.round(np.clip(sample.audio, -1, 1) * 32767).astype(np.int16),
        offsets=sample.offsets, texts=np.array(sample.texts).astype(str))
    audio = np.round(np.clip(sample.audio, -1, 1) * 32767).astype(np.int16).astype(np.float32)
    audio /= 32767.0
    waves = [audio[sample.offsets[i]:sample.offsets[i + 1]] for i in range(len(sample))]
    hyps = Transcriber(out_dir, backend="onnx").transcribe_many(waves)
    return {"file": path.name, "utterances": len(sample), **error_rates(sample.texts, hyps),
            "transcripts": hyps}


def inference_copy(model, config):
    """The same network rebuilt without its training-only parts (dropout, SpecAugment), whose
    random-state variables a SavedModel cannot capture; weights copied layer by layer."""
    import dataclasses

    from .model import build_model

    clean_config = dataclasses.replace(config, dropout_rate=0.0, freq_mask_count=0,
                                     time_mask_count=0)
    clean = build_model(clean_config)
    for layer in clean.layers:
        try:
            source = model.get_layer(layer.name)
        except ValueError:
            continue
        weights = [w for w in source.weights if "seed_generator" not in w.path]
        if len(weights) == len(layer.weights) and weights:
            layer.set_weights([np.asarray(w) for w in weights])
    return clean


def _run_data(run_dir: Path):
    info = json.loads((run_dir / "run.json").read_text())
    data = info.get("data")
    return None if data in (None, "synthetic") else data


def transcript_parity(model, config, export_dir: Path, sample: SpeechSet) -> dict[str, Any]:
    """Keras transcripts vs each exported backend's on `sample`: identical count + WER."""
    from .transcriber import Transcriber

    keras_texts = transcribe_keras(model, sample, config)
    waves = [sample.waveform(i) for i in range(len(sample))]
    result: dict[str, Any] = {"utterances": len(sample),
                            "keras": error_rates(sample.texts, keras_texts)}
    for backend, quantization in (("onnx", "none"), ("tflite", "none"), ("onnx", "int8"),
                                ("tflite", "int8"), ("tflite", "float16")):
        try:
            transcriber = Transcriber(export_dir, backend, quantization)
        except (UserError, ArtifactError):
            continue
        texts = transcriber.transcribe_many(waves)
        result[f"{backend}-{quantization}"] = {
            "identical_to_keras": int(sum(a == b for a, b in zip(texts, keras_texts, strict=False))),
            **error_rates(sample.texts, texts),
        }
    return result


# --------------------------------------------------------------------------------------
# predict
# --------------------------------------------------------------------------------------


def transcribe_keras_waveforms(model, config, waveforms: list[np.ndarray],
                             beam_width: int = 1) -> list[str]:
    """Keras transcripts with the same chunking and minimum-length rules as the runtime."""
    from .transcriber import MIN_SAMPLES, chunk_waveform, decode_batch

    max_samples = int(round(config.max_audio_seconds * config.sample_rate))
    max_samples -= max_samples % config.frame_step
    pieces, owners = [], []
    for index, waveform in enumerate(waveforms):
        for chunk in chunk_waveform(waveform, max_samples, config.sample_rate):
            if chunk.size >= MIN_SAMPLES:
                pieces.append(chunk)
                owners.append(index)
    joined: list[list[str]] = [[] for _ in waveforms]
    for start in range(0, len(pieces), 16):
        group = pieces[start:start + 16]
        waveform, lengths = pad_batch(group, multiple=config.frame_step)
        log_probs, logit_lengths = model.predict_on_batch([waveform, lengths])
        texts = decode_batch(np.asarray(log_probs), np.asarray(logit_lengths), VOCABULARY,
                           beam_width)
        for owner, text in zip(owners[start:start + 16], texts, strict=False):
            if text:
                joined[owner].append(text)
    return [" ".join(parts) for parts in joined]


def predict(model_dir: str | Path, inputs: list[str],
            options: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Transcribe audio files. `model_dir`: an export directory (rnnkit.runtime, no
    TensorFlow; `options["backend"]` onnx|tflite, `options["quantization"]`) or a run
    directory (Keras). `options["beam_width"]`: 1 greedy, >1 prefix beam search."""
    from rnnkit.data.audio import read_audio

    options = dict(options or {})
    model_dir = Path(model_dir)
    if isinstance(inputs, str | Path):
        inputs = [inputs]
    if not inputs:
        raise UserError("predict needs at least one audio file")
    beam_width = options.get("beam_width")
    backend = options.get("backend") or "onnx"
    if (model_dir / "manifest.json").is_file() and backend != "keras":
        from .transcriber import transcribe_files

        return transcribe_files(model_dir, list(inputs), backend,
                              options.get("quantization") or "none", beam_width)
    if not (model_dir / "run.json").is_file():
        raise UserError(f"{model_dir} is neither a run directory (run.json) nor an export "
                      "directory (manifest.json)")
    config, model = _load_run(model_dir)
    waves = [read_audio(path, config.sample_rate) for path in inputs]
    texts = transcribe_keras_waveforms(model, config, waves,
                                     beam_width or config.beam_width)
    return [{"input": str(path), "transcript": text,
             "seconds": round(wave.size / config.sample_rate, 3)}
            for path, wave, text in zip(inputs, waves, texts, strict=False)]


class SpeechToTextTask(Task):
    name = "speech_to_text"
    description = "speech recognition (CTC over characters) from raw 16 kHz waveforms"
    config_class = SpeechToTextConfig
    input_kind = "audio file"
    runtime_module = "apps.speech_to_text.transcriber"
    demo_order = 30
    # Measured: 3000 utterances x 8 epochs = 162 s of training -> test WER 0.47 / CER 0.18
    # (1500 x 3 epochs with 96 units ended at WER 1.0: it had not started to spell).
    demo_overrides = {"train_size": 3000, "val_size": 100, "test_size": 100, "epochs": 10,
                      "max_train_minutes": 5.0}
    headline_metrics = ("wer", "cer")

    def train(self, config, run_dir=None, data=None):
        return train(config, run_dir, data=data)

    def evaluate(self, run_dir, data=None):
        return evaluate(run_dir, data=data)

    def export(self, run_dir, out_dir, formats=None, quantize=None):
        return export(run_dir, out_dir, list(formats or self.export_formats),
                      list(quantize or self.export_quantizations))

    def predict(self, model_dir, inputs, options=None):
        return predict(model_dir, inputs, options)


TASK = SpeechToTextTask()
