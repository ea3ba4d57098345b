"""speech_to_text app: the ``Task`` (train / evaluate / export / predict) and its Keras
transcriber. Keras/TensorFlow are imported inside the hooks that need them."""

from __future__ import annotations

import csv
import dataclasses
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from apps.speech_to_text.config import SpeechToTextConfig
from apps.speech_to_text.data import (
    BLANK_ID,
    VOCABULARY,
    SpeechSet,
    error_rates_by_source,
    load_splits,
    read_speech,
    user_splits,
)
from apps.speech_to_text.spec import GRAPH, LENGTHS, WAVEFORM, SpeechSpec
from apps.speech_to_text.transcriber import Transcriber, TranscriberBase, pad_waveforms
from rnnkit.errors import UserError
from rnnkit.runtime import runtime_variants
from rnnkit.task import ExportPlan, RunDir, Task, variant_key

MODEL_FILE = "model.keras"
FEATURES_ASSET = "features.json"
VOCABULARY_ASSET = "vocabulary.json"
WER_CURVE_FILE = "wer_curve.csv"
SAMPLE_FILE = "heldout_sample.npz"
AGREEMENT_UTTERANCES = 64  # validation utterances transcribed by Keras and every variant
SAMPLE_UTTERANCES = 30  # test utterances of at most 3 s shipped beside the model
CHUNK_SEARCH_SECONDS = 2.0


def error_rates(refs: Sequence[str], hyps: Sequence[str]) -> dict[str, float]:
    """Corpus WER and CER."""
    from rnnkit.metrics import cer, wer

    return {"wer": float(wer(list(refs), list(hyps))), "cer": float(cer(list(refs), list(hyps)))}


def utterance_report(data: SpeechSet, hyps: list[str], count: int = 5) -> dict[str, list]:
    """Best, median and worst utterances by WER."""
    from rnnkit.metrics import wer

    rows = [{"reference": ref, "hypothesis": hyp, "wer": float(wer([ref], [hyp])),
             "source": source} for ref, hyp, source in zip(data.texts, hyps, data.sources,
                                                            strict=True)]
    ranked = sorted(rows, key=lambda row: (row["wer"], len(row["reference"])))
    middle = max(0, len(ranked) // 2 - count // 2)
    return {"best": ranked[:count], "median": ranked[middle:middle + count],
            "worst": ranked[::-1][:count]}


def feature_settings(config: SpeechToTextConfig) -> dict[str, Any]:
    """The frontend's settings (``features.json`` asset and ``manifest["features"]``)."""
    return {"input": "raw mono float32 waveform in [-1, 1], right-padded with zeros",
            **{name: getattr(config, name) for name in (
                "sample_rate", "frame_length", "frame_step", "fft_length", "num_mel_bins",
                "lower_edge_hertz", "upper_edge_hertz")}}


def speech_spec(config: SpeechToTextConfig) -> SpeechSpec:
    """The manifest spec of a model of ``config`` (audio longer than ``max_samples`` is chunked)."""
    max_samples = int(round(config.max_audio_seconds * config.sample_rate))
    max_samples -= max_samples % config.frame_step
    return SpeechSpec(sample_rate=config.sample_rate, frame_step=config.frame_step,
                      vocabulary_file=f"assets/{VOCABULARY_ASSET}", blank_id=BLANK_ID,
                      beam_width=config.beam_width,
                      max_audio_seconds=max_samples / config.sample_rate,
                      search_seconds=CHUNK_SEARCH_SECONDS, min_samples=config.frame_length)


class KerasTranscriber(TranscriberBase):
    """A Keras inference model behind the same ``predict`` as the runtime ``Transcriber``."""

    def __init__(self, model: Any, config: SpeechToTextConfig, batch_size: int = 32):
        self.model, self.config, self.batch_size = model, config, batch_size
        self.spec = speech_spec(config)
        self.vocabulary = list(VOCABULARY)

    @classmethod
    def from_run(cls, run: RunDir) -> KerasTranscriber:
        import keras

        import apps.speech_to_text.model  # noqa: F401 - registers the custom layers

        model = keras.saving.load_model(
            run.require(MODEL_FILE, what="not a finished speech_to_text run"), compile=False)
        return cls(model, run.config(SpeechToTextConfig))

    def run_batch(self, waveform: np.ndarray, lengths: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
        return self.model.predict_on_batch([waveform, lengths])

    def score(self, data: SpeechSet) -> dict[str, Any]:
        hyps = self.transcribe_many([data.waveform(i) for i in range(len(data))])
        return {**error_rates(data.texts, hyps), "examples": len(data),
                "beam_width": self.spec.beam_width, "utterances": utterance_report(data, hyps),
                **error_rates_by_source(data, hyps)}


def real_speech_report(transcriber: TranscriberBase) -> dict[str, Any]:
    """``{"real_speech": WER/CER per installed real-speech set}`` (``{}`` when none is
    installed: ``apt-get install pocketsphinx-testdata``)."""
    from apps.speech_to_text.real_speech import real_sets, score_real_sets

    sets = real_sets(transcriber.spec.sample_rate)
    return {"real_speech": score_real_sets(transcriber, sets)} if sets else {}


# ---------------------------------------------------------------------------------------------
# train


def _callbacks(transcriber: KerasTranscriber, validation: SpeechSet, config: SpeechToTextConfig,
               curve_path: Path) -> list:
    """A wall-clock time limit (after the epoch that passes it) and a validation
    WER-vs-training-time curve (``wer_curve.csv``;
    the time spent on the WER evaluations themselves is left out)."""
    import keras

    from rnnkit.training import TimeLimit

    class WERCurve(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.started, self.eval_seconds = time.time(), 0.0
            if not curve_path.exists():
                curve_path.write_text("elapsed_seconds,epoch,val_wer,val_cer\n")

        def on_epoch_end(self, epoch, logs=None):
            begin = time.time()
            elapsed = begin - self.started - self.eval_seconds
            hyps = transcriber.transcribe_many(
                [validation.waveform(i) for i in range(len(validation))])
            rates = error_rates(validation.texts, hyps)
            self.eval_seconds += time.time() - begin
            with curve_path.open("a", newline="") as handle:
                csv.writer(handle).writerow([round(elapsed, 1), epoch + 1,
                                             round(rates["wer"], 4), round(rates["cer"], 4)])
            if logs is not None:
                logs["val_wer"] = rates["wer"]
            print(f"epoch {epoch + 1}: val_wer={rates['wer']:.4f} val_cer={rates['cer']:.4f} "
                  f"({elapsed:.0f}s training)")

    limit = [TimeLimit(config.max_train_minutes, per_batch=False)] \
        if config.max_train_minutes > 0 else []
    return [WERCurve(), *limit] if config.eval_wer_every_epoch else limit


def fit_run(config: SpeechToTextConfig, run: RunDir, data: str | None) -> dict[str, Any]:
    """Train the CTC model into ``run``, recording its splits; the training figures (with
    the test split's WER/CER)."""
    from apps.speech_to_text.data import speech_dataset
    from apps.speech_to_text.model import build_model, build_training_model, ctc_mean
    from rnnkit.training import fit, make_optimizer, set_seed

    if config.batch_size < 1 or config.epochs < 1:
        raise UserError("`batch_size` and `epochs` must be >= 1. Received: "
                        f"batch_size={config.batch_size}, epochs={config.epochs}")
    set_seed(config.seed)
    started = time.time()
    splits = load_splits(config, data)
    data_seconds = time.time() - started
    run.update_info(data=data or "synthetic")
    for name, split in splits.items():
        run.record_split(name, split.records(name if data is None else None))
    train_set = splits["train"]
    train_set = train_set.subset([i for i, n in enumerate(train_set.lengths())
                                  if 0 < n <= config.max_seconds * config.sample_rate])
    if not len(train_set):
        raise UserError("No training utterances left (all empty or longer than max_seconds)")

    model = build_model(config)
    trainer = build_training_model(model)
    train_batches = speech_dataset(train_set, config, training=True, seed=config.seed)
    validation = speech_dataset(splits["validation"], config, training=False)
    steps_per_epoch = config.steps_per_epoch or len(train_batches)
    if config.steps_per_epoch:  # epochs of a fixed step count: cycle through the batches
        train_batches = train_batches.repeat()
    optimizer = make_optimizer(config.learning_rate, clipnorm=config.clipnorm, schedule="cosine",
                               total_steps=steps_per_epoch * config.epochs,
                               warmup_steps=min(200, steps_per_epoch))
    trainer.compile(optimizer=optimizer, loss=ctc_mean, jit_compile=False)
    (run.file("assets") / VOCABULARY_ASSET).write_text(json.dumps(list(VOCABULARY)) + "\n")
    (run.file("assets") / FEATURES_ASSET).write_text(
        json.dumps(feature_settings(config), indent=2) + "\n")

    transcriber = KerasTranscriber(model, config)
    fit(trainer, train_batches, validation, run_dir=run.path, epochs=config.epochs,
        monitor="val_loss", patience=config.patience, tensorboard=False, verbose=2,
        callbacks=_callbacks(transcriber, splits["validation"], config,
                             run.file(WER_CURVE_FILE)),
        steps_per_epoch=config.steps_per_epoch or None)
    best = run.file("checkpoints", "best.weights.h5")
    if best.is_file():
        trainer.load_weights(best)
    train_seconds = time.time() - started - data_seconds
    model.save(run.file(MODEL_FILE))
    return {**transcriber.score(splits["test"]), **real_speech_report(transcriber),
            "train_examples": len(train_set),
            "train_seconds": round(train_seconds, 1), "data_seconds": round(data_seconds, 1),
            "parameters": int(model.count_params())}


# ---------------------------------------------------------------------------------------------
# evaluate


def score_run(run: RunDir, data: str | None) -> dict[str, Any]:
    """WER/CER and best/median/worst utterances on the recorded test split (or all of
    ``data``)."""
    transcriber = KerasTranscriber.from_run(run)
    if data is None:
        test, source = SpeechSet.from_records(run.split("test"), transcriber.config), "test split"
    else:
        pairs = [pair for split in user_splits(data, transcriber.config).values() for pair in split]
        test, source = read_speech(pairs, transcriber.config), str(data)
    if not len(test):
        raise UserError(f"No test utterances in {source}")
    return {"data": source, **transcriber.score(test), **real_speech_report(transcriber)}


# ---------------------------------------------------------------------------------------------
# export


def inference_copy(model: Any, config: SpeechToTextConfig) -> Any:
    """The same network rebuilt without its training-only parts (dropout, SpecAugment), whose
    random-state variables a SavedModel cannot capture; weights copied layer by layer."""
    from apps.speech_to_text.model import build_model

    clean = build_model(dataclasses.replace(config, dropout_rate=0.0, freq_mask_count=0,
                                            time_mask_count=0))
    names = {layer.name for layer in model.layers}
    for layer in clean.layers:
        if layer.name not in names:
            continue
        weights = [w for w in model.get_layer(layer.name).weights
                   if "seed_generator" not in w.path]
        if weights and len(weights) == len(layer.weights):
            layer.set_weights([np.asarray(w) for w in weights])
    return clean


def _parity_batch(data: SpeechSet, width: int) -> dict[str, np.ndarray]:
    """A right-padded batch of mixed lengths (shortest, longest, two between), padded to
    ``width`` samples: the TFLite model's fixed length, so every format returns the same
    number of frames (``logit_lengths`` says which are valid)."""
    order = np.argsort(data.lengths())
    picks = sorted({int(order[int(q * (len(order) - 1))]) for q in (0, 1 / 3, 2 / 3, 1)})
    waveform, lengths = pad_waveforms([data.waveform(i)[:width] for i in picks], 1)
    return {WAVEFORM: np.pad(waveform, [(0, 0), (0, width - waveform.shape[1])]),
            LENGTHS: lengths}


def _read_wer_curve(path: Path) -> list[dict[str, float]]:
    if not path.is_file():
        return []
    with path.open(newline="") as handle:
        return [{key: float(value) for key, value in row.items()} for row in csv.DictReader(handle)]


def _variant_error_rates(staging: Path, manifest: dict[str, Any], keras: KerasTranscriber,
                         sample: SpeechSet) -> dict[str, Any]:
    """WER/CER of Keras and of every exported variant on the agreement utterances."""
    waves = [sample.waveform(i) for i in range(len(sample))]
    rates = {"keras": error_rates(sample.texts, keras.transcribe_many(waves))}
    for backend, quantization in runtime_variants(manifest):
        hyps = Transcriber(staging, backend, quantization).transcribe_many(waves)
        rates[variant_key(backend, quantization)] = error_rates(sample.texts, hyps)
    return rates


def _write_heldout_sample(staging: Path, test: SpeechSet, config: SpeechToTextConfig
                          ) -> dict[str, Any]:
    """``heldout_sample.npz``: the first test utterances of at most 3 s (int16), with the
    ONNX transcripts and WER that the shipped-model test reproduces."""
    short = [i for i, n in enumerate(test.lengths()) if n <= 3 * config.sample_rate]
    sample = test.subset(short[:SAMPLE_UTTERANCES])
    pcm = np.round(np.clip(sample.audio, -1, 1) * 32767).astype(np.int16)
    np.savez_compressed(staging / SAMPLE_FILE, audio=pcm, offsets=sample.offsets,
                        texts=np.array(sample.texts).astype(str))
    audio = pcm.astype(np.float32) / 32767.0
    hyps = Transcriber(staging, "onnx").transcribe_many(
        [audio[sample.offsets[i]:sample.offsets[i + 1]] for i in range(len(sample))])
    return {"file": SAMPLE_FILE, "utterances": len(sample), **error_rates(sample.texts, hyps),
            "transcripts": hyps}


def export_plan(run: RunDir, formats: Sequence[str]) -> ExportPlan:
    """The CTC graph, its spec and checks, for ``Task.export``."""
    trained = KerasTranscriber.from_run(run)
    config = trained.config
    keras = KerasTranscriber(inference_copy(trained.model, config), config)
    validation = SpeechSet.from_records(run.split("validation"), config)
    if not len(validation):
        raise UserError(f"{run.path} has no validation utterances to check the export on")
    sample = validation.subset(range(min(AGREEMENT_UTTERANCES, len(validation))))
    spec = keras.spec
    synthetic = run.info.get("data") == "synthetic"
    trained_metrics, evaluated = run.metrics("train"), run.metrics("evaluate")
    tested = evaluated if evaluated.get("data") == "test split" else trained_metrics

    def finalize(staging: Path, manifest: dict[str, Any]) -> None:
        manifest["metrics"]["agreement_error_rates"] = _variant_error_rates(
            staging, manifest, keras, sample)
        if synthetic and "onnx" in formats:
            test = SpeechSet.from_records(run.split("test"), config)
            manifest["heldout_sample"] = _write_heldout_sample(staging, test, config)

    return ExportPlan(
        models={GRAPH: keras.model}, spec=spec, keras_predictor=keras,
        agreement_inputs=[sample.waveform(i) for i in range(len(sample))],
        agreement_source="validation split",
        # Any length up to max_audio_seconds (longer audio is chunked): a 2 s clip costs 2 s.
        tflite_shapes={GRAPH: {WAVEFORM: (1, None), LENGTHS: (1,)}},
        parity_inputs={GRAPH: [_parity_batch(validation, spec.max_samples)]},
        assets={VOCABULARY_ASSET: list(VOCABULARY), FEATURES_ASSET: feature_settings(config)},
        manifest_extra={
            "features": feature_settings(config),
            "decoding": {"decoder": "ctc_greedy" if spec.beam_width <= 1 else "ctc_prefix_beam"},
            "chunking": {"rule": (
                "audio longer than max_audio_seconds is cut at the quietest 10 ms within the "
                f"last {spec.search_seconds:g} s of each chunk; chunk transcripts are joined "
                "with a space")},
            "metrics": {"test_split": {k: tested[k] for k in ("wer", "cer", "examples")
                                       if k in tested},
                        "train_seconds": trained_metrics.get("train_seconds")},
            "wer_curve": _read_wer_curve(run.file(WER_CURVE_FILE)),
            "outputs_note": (f"log_probs (B, T, C) log-softmax, blank {spec.blank_id}; "
                             "logit_lengths (B,) valid frames"),
        },
        # int8 ONNX keeps the log-mel frontend float32 (8-bit power spectra ruin log-mels);
        # the frontend holds no weights, so TFLite's dynamic-range int8 leaves it float too.
        quantize_exclude={GRAPH: ("frontend",)},
        finalize=finalize)


# ---------------------------------------------------------------------------------------------
# the Task


class SpeechToTextTask(Task):
    name = "speech_to_text"
    description = "speech recognition (CTC over characters) from raw 16 kHz waveforms"
    config_class = SpeechToTextConfig
    input_kind = "audio file"
    compared_output = "transcript"
    batch_rule = ("clips (long ones cut into chunks) sorted by sample count, "
                  "batches of 16 (TFLite: 1), each right-padded with zeros to its longest")
    runtime_module = "apps.speech_to_text.transcriber"
    demo_order = 30
    # Measured: 3000 utterances x 8 epochs = 162 s of training -> test WER 0.47 / CER 0.18
    # (1500 x 3 epochs with 96 units ended at WER 1.0: it had not started to spell).
    demo_overrides = {"train_size": 3000, "val_size": 100, "test_size": 100, "epochs": 10,
                      "max_train_minutes": 5.0}
    headline_metrics = ("wer", "cer")

    def fit(self, config: SpeechToTextConfig, run: RunDir, data: str | None) -> dict[str, Any]:
        return fit_run(config, run, data)

    def score(self, run: RunDir, data: str | None) -> dict[str, Any]:
        return score_run(run, data)

    def export_plan(self, run: RunDir, formats: Sequence[str]) -> ExportPlan:
        return export_plan(run, formats)

    def keras_predictor(self, run: RunDir) -> KerasTranscriber:
        return KerasTranscriber.from_run(run)

    def runtime_predictor(self, export_dir, backend="onnx", quantization="none",
                          num_threads=None) -> Transcriber:
        return Transcriber(export_dir, backend, quantization, num_threads)


TASK = SpeechToTextTask()
