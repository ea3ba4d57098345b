"""speech_to_text app: the ``Task`` (train / evaluate / export / predict) and its Keras
transcriber. Keras/TensorFlow are imported inside the hooks that need them."""

from __future__ import annotations

import csv
import dataclasses
import json
import sys
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
    normalize_transcript,
    read_speech,
)
from apps.speech_to_text.spec import GRAPH, LENGTHS, WAVEFORM, SpeechSpec
from apps.speech_to_text.transcriber import (
    Transcriber,
    TranscriberBase,
    WordDecoding,
    pad_waveforms,
)
from rnnkit.errors import UserError
from rnnkit.runtime import runtime_variants
from rnnkit.task import ExportPlan, InitSource, RunDir, Task, variant_key

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

    def score(self, data: SpeechSet, words: WordDecoding | None = None) -> dict[str, Any]:
        """WER/CER and utterances of ``data``, closed-vocabulary decoded with ``words``; rates
        per engine/voice where ``data`` records them."""
        hyps = self._transcribe_waves([data.waveform(i) for i in range(len(data))], None, words)
        decoding = {"beam_width": self.spec.beam_width} if words is None else \
            {"beam_width": words.beam_width, "closed_vocabulary": words.describe()}
        return {**error_rates(data.texts, hyps), "examples": len(data), **decoding,
                "utterances": utterance_report(data, hyps), **error_rates_by_source(data, hyps)}


def real_speech_report(transcriber: TranscriberBase) -> dict[str, Any]:
    """``{"real_speech": WER/CER per installed real-speech set}`` (``{}`` when none is
    installed: ``apt-get install pocketsphinx-testdata``), decoded without a word list."""
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


# What a model's weights depend on: kept from the --init-from source.
FEATURE_FIELDS = ("sample_rate", "frame_length", "frame_step", "fft_length", "num_mel_bins",
                  "lower_edge_hertz", "upper_edge_hertz")
ARCHITECTURE_FIELDS = ("feature_cmvn", "conv_filters", "conv_kernel_sizes", "conv_strides",
                       "rnn_kind", "units", "num_layers", "bidirectional")


def _source_charset(source: InitSource) -> list[str]:
    from apps.speech_to_text.transcriber import read_vocabulary

    if source.kind == "run":
        return read_vocabulary(source.run.require("assets", VOCABULARY_ASSET,
                                                  what="not a finished speech_to_text run"))
    spec = SpeechSpec.from_manifest(source.manifest, str(source.path / "manifest.json"))
    return read_vocabulary(source.path / spec.vocabulary_file)


def initial_config(config: SpeechToTextConfig, source: InitSource) -> SpeechToTextConfig:
    """``config`` with the source's frontend and architecture (a run's config; an export's
    manifest ``features`` and ``architecture`` — exports older than ``architecture`` take it
    from ``config``), after checking that the source spells with this app's characters."""
    charset = _source_charset(source)
    if list(charset) != list(VOCABULARY):
        raise UserError(f"--init-from {source.path} has the character set {charset}; this "
                        f"app trains {list(VOCABULARY)}")
    if source.kind == "run":
        trained = source.run.config(SpeechToTextConfig)
        values = {name: getattr(trained, name) for name in FEATURE_FIELDS + ARCHITECTURE_FIELDS}
    else:
        # Exports since #13 record their architecture; older ones only their features.
        recorded = {**(source.manifest.get("architecture") or {}),
                    **(source.manifest.get("features") or {})}
        values = {name: recorded[name] for name in FEATURE_FIELDS + ARCHITECTURE_FIELDS
                  if name in recorded}
    changed = sorted(name for name, value in values.items() if getattr(config, name) != value)
    if changed:
        print(f"note: --init-from {source.path}: training with its {', '.join(changed)}",
              file=sys.stderr)
    return dataclasses.replace(config, **values)


def _copy_weights(source: Any, target: Any) -> int:
    """Copy weights layer by layer (by name; random-state variables left out) from
    ``source`` into ``target``; returns how many layers were copied."""
    names = {layer.name for layer in source.layers}
    copied = 0
    for layer in target.layers:
        if layer.name not in names:
            continue
        weights = [w for w in source.get_layer(layer.name).weights
                   if "seed_generator" not in w.path]
        wanted = [w for w in layer.weights if "seed_generator" not in w.path]
        if weights and len(weights) == len(wanted):
            for weight, value in zip(wanted, weights, strict=True):
                if tuple(weight.shape) != tuple(value.shape):
                    raise UserError(f"{layer.name}: {weight.path} has shape "
                                    f"{tuple(weight.shape)}, the source's "
                                    f"{tuple(value.shape)}: not the same architecture")
                weight.assign(np.asarray(value))
            copied += 1
    return copied


def load_initial_weights(model: Any, config: SpeechToTextConfig, source: InitSource) -> int:
    """Set ``model``'s weights to the source's: a run's ``model.keras``, or an export's
    SavedModel checkpoint restored into a model of ``config`` (``rnnkit.export.rebuild``).
    A UserError when any layer with weights is left without the source's values."""
    import keras

    import apps.speech_to_text.model  # noqa: F401 - registers the custom layers
    from apps.speech_to_text.model import build_model

    if source.kind == "run":
        trained = keras.saving.load_model(
            source.run.require(MODEL_FILE, what="not a finished speech_to_text run"),
            compile=False)
    else:
        from rnnkit.export.rebuild import restore_checkpoint

        checkpoint = source.path / "saved_model" / GRAPH / "variables" / "variables"
        if not checkpoint.with_suffix(".index").is_file():
            raise UserError(f"--init-from {source.path} has no saved_model/{GRAPH} (export "
                            "with the saved_model format to fine-tune from an export)")
        trained = build_model(dataclasses.replace(config, dropout_rate=0.0, freq_mask_count=0,
                                                  time_mask_count=0))
        restore_checkpoint(trained, checkpoint)
    copied = _copy_weights(trained, model)
    with_weights = [layer for layer in model.layers
                    if any("seed_generator" not in w.path for w in layer.weights)]
    if copied != len(with_weights):
        raise UserError(f"--init-from {source.path}: {copied} of {len(with_weights)} layers "
                        "with weights found in the source: not the same architecture")
    return copied


def unspellable_characters(data: str) -> dict[str, int]:
    """Letters of the transcripts in ``data`` that normalization cannot map to this app's
    characters (they become spaces), with their counts."""
    from rnnkit.data.audio import read_pairs

    counts: dict[str, int] = {}
    for _, text in read_pairs(data):
        for char in str(text).lower():
            if char.isalpha() and char not in VOCABULARY:
                counts[char] = counts.get(char, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: -item[1]))


def fit_run(config: SpeechToTextConfig, run: RunDir, data: str | None,
            init_from: InitSource | None = None) -> dict[str, Any]:
    """Train the CTC model into ``run`` (from the weights of ``init_from`` when given),
    recording its splits; the training figures (with the test split's WER/CER)."""
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
    facts: dict[str, Any] = {}
    if init_from is not None:
        facts["init_layers"] = load_initial_weights(model, config, init_from)
    if data is not None:
        unmapped = unspellable_characters(data)
        if unmapped:
            print(f"warning: {data}: letters outside the model's characters become spaces: "
                  f"{', '.join(f'{c!r} x{n}' for c, n in list(unmapped.items())[:10])}",
                  file=sys.stderr)
            facts["unmapped_characters"] = unmapped
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
            "parameters": int(model.count_params()), **facts}


# ---------------------------------------------------------------------------------------------
# evaluate


def evaluation_data(data: str, config: SpeechToTextConfig) -> tuple[SpeechSet, dict[str, int]]:
    """Every row of a user file/folder (no train/validation/test split: evaluate scores the
    whole file), and the count of rows read, scored and left out (no transcript after
    normalization, or empty audio)."""
    from rnnkit.data.audio import read_pairs

    rows = [(str(Path(path).resolve()), normalize_transcript(text))
            for path, text in read_pairs(data)]
    with_text = [(path, text) for path, text in rows if text]
    test = read_speech(with_text, config)
    counts = {"rows": len(rows), "scored": len(test),
              "no_transcript": len(rows) - len(with_text),
              "empty_audio": len(with_text) - len(test)}
    if len(test) < len(rows):
        print(f"warning: {data}: {len(rows) - len(test)} of {len(rows)} rows not scored "
              f"({counts['no_transcript']} without a transcript, {counts['empty_audio']} with "
              "empty audio)", file=sys.stderr)
    return test, counts


def score_run(run: RunDir, data: str | None, vocabulary=None, lm=None,
              lm_weight: float | None = None, word_bonus: float | None = None
              ) -> dict[str, Any]:
    """WER/CER and best/median/worst utterances on the recorded test split (or every row of
    ``data``), optionally closed-vocabulary decoded (``vocabulary``, ``lm``, ...)."""
    from apps.speech_to_text.transcriber import word_decoding

    # Word-list errors first, before the model loads.
    words = word_decoding(list(VOCABULARY), BLANK_ID, vocabulary, lm, lm_weight, word_bonus)
    transcriber = KerasTranscriber.from_run(run)
    counts: dict[str, int] = {}
    if data is None:
        test, source = SpeechSet.from_records(run.split("test"), transcriber.config), "test split"
    else:
        (test, counts), source = evaluation_data(data, transcriber.config), str(data)
    if not len(test):
        raise UserError(f"No test utterances in {source}")
    return {"data": source, **({"rows": counts} if counts else {}),
            **transcriber.score(test, words), **real_speech_report(transcriber)}


# ---------------------------------------------------------------------------------------------
# export


def inference_copy(model: Any, config: SpeechToTextConfig) -> Any:
    """The same network rebuilt without its training-only parts (dropout, SpecAugment), whose
    random-state variables a SavedModel cannot capture; weights copied layer by layer."""
    from apps.speech_to_text.model import build_model

    clean = build_model(dataclasses.replace(config, dropout_rate=0.0, freq_mask_count=0,
                                            time_mask_count=0))
    _copy_weights(model, clean)
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

    plan = ExportPlan(
        models={GRAPH: keras.model}, spec=spec, keras_predictor=keras,
        agreement_inputs=[sample.waveform(i) for i in range(len(sample))],
        agreement_source="validation split",
        # Any length up to max_audio_seconds (longer audio is chunked): a 2 s clip costs 2 s.
        tflite_shapes={GRAPH: {WAVEFORM: (1, None), LENGTHS: (1,)}},
        parity_inputs={GRAPH: [_parity_batch(validation, spec.max_samples)]},
        assets={VOCABULARY_ASSET: list(VOCABULARY), FEATURES_ASSET: feature_settings(config)},
        manifest_extra={
            "features": feature_settings(config),
            "architecture": {name: getattr(config, name) for name in ARCHITECTURE_FIELDS},
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
    if getattr(config, "streaming", False):  # #19: the step graph beside the offline one
        from apps.speech_to_text.stream_export import add_step_graph

        plan = add_step_graph(plan, keras.model, config, plan.agreement_inputs)
    return plan


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
    # Closed-vocabulary decoding options of predict and evaluate (CLI --vocabulary, --lm, ...).
    decode_options = ("vocabulary", "lm", "lm_weight", "word_bonus")

    supports_init_from = True

    def fit(self, config: SpeechToTextConfig, run: RunDir, data: str | None,
            init_from: InitSource | None = None) -> dict[str, Any]:
        return fit_run(config, run, data, init_from)

    def initial_config(self, config: SpeechToTextConfig, source: InitSource
                       ) -> SpeechToTextConfig:
        return initial_config(config, source)

    def score(self, run: RunDir, data: str | None, vocabulary=None, lm=None,
              lm_weight: float | None = None, word_bonus: float | None = None
              ) -> dict[str, Any]:
        return score_run(run, data, vocabulary, lm, lm_weight, word_bonus)

    def export_plan(self, run: RunDir, formats: Sequence[str]) -> ExportPlan:
        return export_plan(run, formats)

    def keras_predictor(self, run: RunDir) -> KerasTranscriber:
        return KerasTranscriber.from_run(run)

    def runtime_predictor(self, export_dir, backend="onnx", quantization="none",
                          num_threads=None) -> Transcriber:
        return Transcriber(export_dir, backend, quantization, num_threads)

    def stream_predict(self, model_dir, inputs, options=None):
        """``predict --stream``: partial results per update, then the final one, per input."""
        from apps.speech_to_text.streaming import stream_predict

        return stream_predict(model_dir, inputs, options)


TASK = SpeechToTextTask()
