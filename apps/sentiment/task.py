"""Sentiment app: the ``Task`` (train / evaluate / export / predict) and its Keras predictor."""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from apps.sentiment.config import SentimentConfig
from apps.sentiment.data import LABELS, NEGATION_PAIRS, load_splits
from apps.sentiment.runtime import TextClassifierBase, encode_texts, run_sorted
from rnnkit.data.text import TextDataset, read_folder_per_class, read_table
from rnnkit.errors import UserError
from rnnkit.task import ExportPlan, RunDir, Task

MODEL_FILE = "model.keras"
TOKENIZER_FILE = "tokenizer.json"
LABELS_FILE = "labels.json"
EVAL_BATCH_SIZE = 256


def classification_report(y_true: Sequence[int], y_pred: Sequence[int],
                          labels: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class precision/recall/F1/support (by label name) and the
    confusion matrix, from class indices."""
    from rnnkit.metrics import classification_report as report

    return report(list(y_true), list(y_pred), list(labels))


def _read_eval_data(data: str, config: SentimentConfig, labels: Sequence[str]) -> TextDataset:
    """All usable rows of a user file/folder (labels outside the run's labels are counted)."""
    path = Path(data)
    if path.is_dir():
        dataset, report = read_folder_per_class(path, labels)
    else:
        dataset, report = read_table(path, config.text_column, config.label_column, labels)
    if report.num_bad:
        print(f"warning: {report.summary()}", file=sys.stderr)
    if not len(dataset):
        raise UserError(f"{path}: no usable examples ({report.summary()})")
    return dataset


# ---------------------------------------------------------------------------------------------
# Keras side


def _keras_batches(rows: list[list[int]], targets: np.ndarray, batch_size: int,
                   bucket_width: int, seed: int, shuffle: bool, word_dropout: float = 0.0,
                   unk_id: int = 1):
    """Length-bucketed, right-padded ``(token_ids, targets)`` batches; with ``word_dropout``
    each non-padding token is replaced by ``<unk>`` with that probability."""
    from rnnkit.data.batching import bucketed_dataset

    def augment(batch: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
        if word_dropout:
            ids = batch["token_ids"]
            drop = (rng.random(ids.shape) < word_dropout) & (ids != 0)
            batch["token_ids"] = np.where(drop, np.int32(unk_id), ids)
        return batch

    return bucketed_dataset(
        {"token_ids": [np.asarray(r, dtype=np.int32) for r in rows], "target": list(targets)},
        lambda batch: (batch["token_ids"], batch["target"]), batch_size, bucket_width,
        shuffle=shuffle, seed=seed, time_fields=["token_ids"], augment=augment)


def keras_predict(model: Any, rows: list[list[int]], batch_size: int = EVAL_BATCH_SIZE,
                  ) -> tuple[np.ndarray, list[np.ndarray] | None]:
    """Probabilities (N, C) and, when the model has them, attention rows (length of each row)."""
    has_attention = "attention" in model.output_names

    def run_batch(batch: np.ndarray):
        outputs = model(batch, training=False)
        return (np.asarray(outputs["probabilities"]),
                np.asarray(outputs["attention"]) if has_attention else None)

    return run_sorted(rows, batch_size, run_batch)


class KerasSentimentPredictor(TextClassifierBase):
    """The run directory's Keras model behind the same ``predict`` as the runtime predictor."""

    def __init__(self, run: RunDir):
        import keras

        import apps.sentiment.model  # noqa: F401 - registers the custom layers
        from rnnkit.text import Tokenizer

        self.run = run
        self.config = run.config(SentimentConfig)
        self.tokenizer = Tokenizer.load(run.require("assets", TOKENIZER_FILE))
        self.labels = list(run.info["labels"])
        self.max_length = self.config.max_length
        self.model = keras.saving.load_model(
            run.require(MODEL_FILE, what="not a finished sentiment run"), compile=False)

    def run_rows(self, rows: list[list[int]]) -> tuple[np.ndarray, list[np.ndarray] | None]:
        return keras_predict(self.model, rows)


# ---------------------------------------------------------------------------------------------
# train


def _check_config(config: SentimentConfig) -> None:
    if config.distill_teachers < 0 or not 0.0 <= config.distill_alpha <= 1.0:
        raise UserError("`distill_teachers` must be >= 0 and `distill_alpha` within [0, 1]. "
                        f"Received: distill_teachers={config.distill_teachers}, "
                        f"distill_alpha={config.distill_alpha}")


def fit_run(config: SentimentConfig, run: RunDir, data: str | None) -> dict[str, Any]:
    """Train on the default corpus (or ``data``) into ``run``; the training figures."""
    import keras

    from apps.sentiment.model import build_model, training_model
    from rnnkit.text import Tokenizer
    from rnnkit.training import fit, make_optimizer, set_seed

    started = time.perf_counter()
    run_dir = run.path
    splits, data_info = load_splits(config, data)
    labels = sorted(set(splits["train"].labels))
    if data is None:
        labels = list(LABELS)
    if len(labels) < 2:
        raise UserError(f"Training data needs at least 2 classes. Received: labels={labels}")
    for name in ("validation", "test"):  # labels never seen in training cannot be predicted
        keep = [i for i, label in enumerate(splits[name].labels) if label in labels]
        if len(keep) != len(splits[name]):
            print(f"warning: {len(splits[name]) - len(keep)} {name} rows have labels not in "
                  f"the training split; left out", file=sys.stderr)
            splits[name] = splits[name].subset(keep)
    run.update_info(labels=labels, data=data_info)
    for name, split in splits.items():
        run.record_split(name, split.records())
    set_seed(config.seed)
    neutral = splits.get("train_neutral") or TextDataset()
    tokenizer = Tokenizer.train(splits["train"].texts + neutral.texts, kind=config.tokenizer,
                                vocab_size=config.vocab_size, lowercase=config.lowercase,
                                min_frequency=config.min_frequency)
    tokenizer.save(run_dir / "assets" / TOKENIZER_FILE)
    (run_dir / "assets" / LABELS_FILE).write_text(json.dumps(labels) + "\n")

    def arrays(split: TextDataset, soft: bool = False):
        rows = encode_texts(tokenizer, split.texts, config.max_length)
        return rows, training_targets(split, labels, config.soft_target_slope if soft else None)

    train_rows, train_y = arrays(splits["train"], soft=config.soft_targets)
    if len(neutral):
        neutral_rows, neutral_y = arrays(neutral, soft=True)
        train_rows, train_y = train_rows + neutral_rows, np.concatenate([train_y, neutral_y])
    validation = None
    if len(splits["validation"]):
        val_rows, val_y = arrays(splits["validation"])
        validation = _keras_batches(val_rows, val_y, EVAL_BATCH_SIZE, config.bucket_width,
                                    config.seed, shuffle=False)
    valence = None
    if config.lexicon_feature:
        from apps.sentiment.data import LEXICON_FILE, fetch_corpus, lexicon_valence

        lexicon_path = fetch_corpus() / LEXICON_FILE
        if not lexicon_path.is_file():
            raise UserError(f"lexicon_feature=true needs {lexicon_path}, which is missing")
        valence = lexicon_valence(
            lexicon_path, [tokenizer.id_to_token(i) or "" for i in range(tokenizer.vocab_size)],
            lowercase=config.lowercase)

    def fit_model(seed: int, targets: np.ndarray, fit_dir: Path):
        set_seed(seed)
        model = build_model(config, tokenizer.vocab_size, len(labels), lexicon_valence=valence)
        trainer = training_model(model)
        optimizer = make_optimizer(config.learning_rate, clipnorm=config.clipnorm,
                                   schedule=config.schedule,
                                   total_steps=math.ceil(len(train_rows) / config.batch_size)
                                   * config.epochs)
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing)
        trainer.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"],
                        jit_compile=config.jit_compile)
        batches = _keras_batches(train_rows, targets, config.batch_size, config.bucket_width,
                                 seed, shuffle=True, word_dropout=config.word_dropout,
                                 unk_id=tokenizer.unk_id)
        history = fit(trainer, batches, validation, run_dir=fit_dir, epochs=config.epochs,
                      monitor="val_accuracy" if validation is not None else "loss",
                      mode="max" if validation is not None else "min",
                      patience=config.patience, tensorboard=False, verbose=2)
        return model, history

    teachers_info = None
    if config.distill_teachers:
        teacher_probabilities, teachers_info = _distill_targets(
            config, run_dir, fit_model, train_rows, train_y,
            val_rows if validation is not None else None,
            val_y if validation is not None else None)
        train_y = (config.distill_alpha * train_y
                   + (1.0 - config.distill_alpha) * teacher_probabilities).astype(np.float32)
    fit_started = time.perf_counter()
    model, history = fit_model(config.seed, train_y, run_dir)
    fit_seconds = time.perf_counter() - fit_started
    model.save(run_dir / MODEL_FILE)
    metrics: dict[str, Any] = {
        "train_seconds": round(time.perf_counter() - started, 1),
        "fit_seconds": round(fit_seconds, 1),
        "epochs_run": len(history.get("loss", [])),
        "train_examples": len(train_rows),
        "neutral_train_examples": len(neutral),
        "vocab_size": tokenizer.vocab_size,
        "parameters": int(model.count_params()),
    }
    if history.get("val_accuracy"):
        metrics["best_val_accuracy"] = max(history["val_accuracy"])
        metrics["final_val_accuracy"] = history["val_accuracy"][-1]
    if teachers_info is not None:
        metrics["distillation"] = teachers_info
    return metrics


def _distill_targets(config: SentimentConfig, run_dir: Path, fit_model, train_rows, train_y,
                     val_rows, val_y) -> tuple[np.ndarray, dict[str, Any]]:
    """Train the ``config.distill_teachers`` teacher models (in ``run_dir/teachers/<k>``) and
    return their mean probabilities on the training rows, with a summary for the run's metrics.

    Each finished teacher leaves its probabilities in its directory, so a killed run started
    again skips the teachers already done (and resumes the one it was training)."""
    probabilities, val_probabilities, summary = [], [], []
    for k in range(1, config.distill_teachers + 1):
        teacher_dir = run_dir / "teachers" / f"teacher_{k}"
        done = teacher_dir / "train_probabilities.npy"
        print(f"teacher {k}/{config.distill_teachers} (seed {config.seed + k})", flush=True)
        if not done.is_file():
            teacher_dir.mkdir(parents=True, exist_ok=True)
            started = time.perf_counter()
            model, _ = fit_model(config.seed + k, train_y, teacher_dir)
            if val_rows is not None:
                np.save(teacher_dir / "validation_probabilities.npy",
                        keras_predict(model, val_rows)[0])
            np.save(teacher_dir / "seconds.npy", np.float64(time.perf_counter() - started))
            np.save(done, keras_predict(model, train_rows)[0])  # last: marks the teacher done
        probabilities.append(np.load(done))
        entry: dict[str, Any] = {"seed": config.seed + k,
                                 "seconds": round(float(np.load(teacher_dir / "seconds.npy")), 1)}
        if val_rows is not None:
            val_probabilities.append(np.load(teacher_dir / "validation_probabilities.npy"))
            entry["val_accuracy"] = float(np.mean(
                val_probabilities[-1].argmax(-1) == val_y.argmax(-1)))
        summary.append(entry)
    info: dict[str, Any] = {"teachers": summary, "alpha": config.distill_alpha}
    if val_rows is not None:
        mean = np.mean(val_probabilities, axis=0)
        info["teacher_ensemble_val_accuracy"] = float(np.mean(mean.argmax(-1) == val_y.argmax(-1)))
    return np.mean(probabilities, axis=0).astype(np.float32), info


def training_targets(split: TextDataset, labels: Sequence[str],
                     soft_target_slope: float | None = None) -> np.ndarray:
    """Float targets ``(N, C)``: one-hot labels, or, with ``soft_target_slope`` for binary
    negative/positive data, ``P(positive) = sigmoid(slope * score)`` for every example that
    has a score (its mean rating); examples without a score stay one-hot."""
    index = {label: i for i, label in enumerate(labels)}
    targets = np.zeros((len(split), len(labels)), dtype=np.float32)
    targets[np.arange(len(split)), [index[label] for label in split.labels]] = 1.0
    if soft_target_slope is not None and split.scores is not None and list(labels) == list(LABELS):
        for row, score in enumerate(split.scores):
            if score is not None:
                positive = 1.0 / (1.0 + math.exp(-soft_target_slope * score))
                targets[row] = (1.0 - positive, positive)
    return targets


# ---------------------------------------------------------------------------------------------
# evaluate


BASELINE_C_GRID = (1.0, 4.0, 10.0, 20.0, 50.0)


def fit_baseline(train_split: TextDataset, labels: Sequence[str], config: SentimentConfig,
                 validation: TextDataset | None = None):
    """TF-IDF (word 1..n-grams) + logistic regression on the training split.

    With a validation split, the inverse regularization ``C`` is picked from
    ``BASELINE_C_GRID`` (plus ``config.baseline_c``) by validation accuracy — the baseline is
    tuned the same way the RNN's config was. Returns ``(pipeline, chosen C)``.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    index = {label: i for i, label in enumerate(labels)}
    y_train = [index[label] for label in train_split.labels]

    def make(c: float):
        pipeline = make_pipeline(
            TfidfVectorizer(ngram_range=(1, config.baseline_ngrams), sublinear_tf=True,
                            min_df=1, lowercase=True, token_pattern=r"(?u)\b\w+\b|[!?]"),
            LogisticRegression(C=c, max_iter=2000),
        )
        return pipeline.fit(train_split.texts, y_train)

    if validation is None or not len(validation):
        return make(config.baseline_c), config.baseline_c
    y_val = np.array([index[label] for label in validation.labels])
    best = None
    for c in sorted({*BASELINE_C_GRID, config.baseline_c}):
        pipeline = make(c)
        accuracy = float(np.mean(pipeline.predict(validation.texts) == y_val))
        if best is None or accuracy > best[0]:
            best = (accuracy, c, pipeline)
    return best[2], best[1]


def score_negation_pairs(predict_labels, labels: Sequence[str]) -> dict[str, Any] | None:
    """How many of the order/negation pairs get both labels right, and opposite labels."""
    if set(labels) != set(LABELS):
        return None
    texts = [t for a, _, b, _ in NEGATION_PAIRS for t in (a, b)]
    predicted = predict_labels(texts)
    details = []
    both_correct = opposite = 0
    for index, (a, label_a, b, label_b) in enumerate(NEGATION_PAIRS):
        pa, pb = predicted[2 * index], predicted[2 * index + 1]
        correct = pa == label_a and pb == label_b
        both_correct += correct
        opposite += pa != pb
        details.append({"a": a, "b": b, "predicted": [pa, pb], "correct": bool(correct)})
    return {"pairs": len(NEGATION_PAIRS), "both_correct": both_correct, "opposite": opposite,
            "details": details}


def _plot_confusions(reports: dict[str, dict[str, Any]], labels: Sequence[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(reports), figsize=(4.2 * len(reports), 3.8), squeeze=False)
    for axis, (title, report) in zip(axes[0], reports.items(), strict=True):
        matrix = np.asarray(report["confusion_matrix"])
        axis.imshow(matrix, cmap="Blues")
        for i in range(matrix.shape[0]):
            for j in range(matrix.shape[1]):
                axis.text(j, i, str(matrix[i, j]), ha="center", va="center",
                          color="white" if matrix[i, j] > matrix.max() / 2 else "black")
        axis.set_xticks(range(len(labels)), labels, rotation=30)
        axis.set_yticks(range(len(labels)), labels)
        axis.set_xlabel("predicted")
        axis.set_ylabel("true")
        axis.set_title(f"{title}\naccuracy {report['accuracy']:.3f}, "
                       f"macro-F1 {report['macro_f1']:.3f}")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _print_summary(metrics: dict[str, Any], labels: Sequence[str]) -> None:
    lines = [f"sentiment evaluation on {metrics['data']} ({metrics['examples']} examples)",
             f"{'':24}{'RNN':>10}{'TF-IDF+LR':>12}",
             f"{'accuracy':24}{metrics['accuracy']:>10.4f}{metrics['baseline_accuracy']:>12.4f}",
             f"{'macro-F1':24}{metrics['macro_f1']:>10.4f}{metrics['baseline_macro_f1']:>12.4f}"]
    versus = metrics.get("accuracy_vs_baseline")
    if versus:
        lines.append(f"accuracy RNN - baseline: {100 * versus['difference']:+.2f} points "
                     f"({100 * versus['confidence']:.0f}% paired-bootstrap interval "
                     f"{100 * versus['low']:+.2f} .. {100 * versus['high']:+.2f}; RNN not ahead "
                     f"in {100 * versus['p_a_not_better']:.1f}% of resamples)")
    for label in labels:
        for key in ("precision", "recall"):
            lines.append(f"{label + ' ' + key:24}{metrics['model']['per_class'][label][key]:>10.4f}"
                         f"{metrics['baseline']['per_class'][label][key]:>12.4f}")
    if "negation_pairs" in metrics:
        pairs = metrics["negation_pairs"]["pairs"]
        lines.append(f"{'order/negation pairs':24}{metrics['negation_pairs_correct']:>7}/{pairs}"
                     f"{metrics['baseline_negation_pairs_correct']:>9}/{pairs}  (both right)")
        lines.append(f"{'  ... opposite labels':24}{metrics['negation_pairs_opposite']:>7}/{pairs}"
                     f"{metrics['baseline_negation_pairs_opposite']:>9}/{pairs}")
    lines.append(f"confusion matrices: {metrics['confusion_matrix_png']}")
    print("\n".join(lines), file=sys.stderr)


def score_run(run: RunDir, data: str | None) -> dict[str, Any]:
    """Model vs TF-IDF + logistic regression on the run's recorded test split (or ``data``)."""
    predictor = KerasSentimentPredictor(run)
    config, tokenizer, labels, model = (predictor.config, predictor.tokenizer, predictor.labels,
                                        predictor.model)
    run_dir = run.path
    if data is None:
        test = TextDataset.from_records(run.split("test"))
        source = "test split"
    else:
        test = _read_eval_data(data, config, labels)
        source = str(data)
    if not len(test):
        raise UserError(f"No test examples in {source}")
    index = {label: i for i, label in enumerate(labels)}
    y_true = [index[label] for label in test.labels]
    rows = encode_texts(tokenizer, test.texts, config.max_length)
    probabilities, _ = keras_predict(model, rows)
    model_report = classification_report(y_true, probabilities.argmax(-1).tolist(), labels)

    train_split = TextDataset.from_records(run.split("train"))
    validation = (TextDataset.from_records(run.split("validation"))
                  if run.has_split("validation") else None)
    baseline, baseline_c = fit_baseline(train_split, labels, config, validation)
    from rnnkit.metrics import paired_bootstrap

    baseline_predicted = baseline.predict(test.texts)
    baseline_report = classification_report(y_true, baseline_predicted.tolist(), labels)
    # Is the RNN really ahead? Paired bootstrap over the test examples.
    truth = np.asarray(y_true)
    versus = paired_bootstrap(probabilities.argmax(-1) == truth, baseline_predicted == truth,
                              seed=config.seed)

    def model_labels(texts):
        probs, _ = keras_predict(model, encode_texts(tokenizer, texts, config.max_length))
        return [labels[i] for i in probs.argmax(-1)]

    def baseline_labels(texts):
        return [labels[i] for i in baseline.predict(texts)]

    plot = run_dir / "plots" / "confusion_matrix.png"
    _plot_confusions({"RNN (this model)": model_report,
                      "TF-IDF + logistic regression": baseline_report}, labels, plot)
    metrics: dict[str, Any] = {
        "data": source,
        "examples": len(test),
        "accuracy": model_report["accuracy"],
        "macro_f1": model_report["macro_f1"],
        "baseline_accuracy": baseline_report["accuracy"],
        "baseline_macro_f1": baseline_report["macro_f1"],
        "baseline_c": baseline_c,
        "accuracy_vs_baseline": versus,
        "model": model_report,
        "baseline": baseline_report,
        "confusion_matrix_png": str(plot),
    }
    pairs = score_negation_pairs(model_labels, labels)
    if pairs is not None:
        baseline_pairs = score_negation_pairs(baseline_labels, labels)
        metrics["negation_pairs_correct"] = pairs["both_correct"]
        metrics["negation_pairs_opposite"] = pairs["opposite"]
        metrics["baseline_negation_pairs_correct"] = baseline_pairs["both_correct"]
        metrics["baseline_negation_pairs_opposite"] = baseline_pairs["opposite"]
        metrics["negation_pairs"] = pairs
        metrics["baseline_negation_pairs"] = baseline_pairs
    _print_summary(metrics, labels)
    return metrics




# ---------------------------------------------------------------------------------------------
# the Task


class SentimentTask(Task):
    name = "sentiment"
    description = "text classification (default: binary sentiment of real human-rated sentences)"
    config_class = SentimentConfig
    input_kind = "text"
    compared_output = "label"
    batch_rule = "texts sorted by token count, batches of 64, each right-padded to its longest"
    runtime_module = "apps.sentiment.runtime"
    demo_order = 10
    demo_overrides = {"epochs": 2, "max_train_examples": 6000, "units": 32, "vocab_size": 6000,
                      "attention_units": 32, "distill_teachers": 2}
    headline_metrics = ("accuracy", "macro_f1", "baseline_accuracy", "negation_pairs_correct")

    def train(self, config: SentimentConfig, run_dir=None, data=None,
              init_from=None) -> dict[str, Any]:
        _check_config(config)
        return super().train(config, run_dir, data, init_from)

    def fit(self, config: SentimentConfig, run: RunDir, data: str | None) -> dict[str, Any]:
        return fit_run(config, run, data)

    def score(self, run: RunDir, data: str | None) -> dict[str, Any]:
        return score_run(run, data)

    def keras_predictor(self, run: RunDir) -> KerasSentimentPredictor:
        return KerasSentimentPredictor(run)

    def runtime_predictor(self, export_dir, backend="onnx", quantization="none",
                          num_threads=None):
        from apps.sentiment.runtime import SentimentPredictor

        return SentimentPredictor(export_dir, backend, quantization, num_threads)

    def export_plan(self, run: RunDir, formats: Sequence[str]) -> ExportPlan:
        from apps.sentiment.exporting import export_plan

        return export_plan(run, KerasSentimentPredictor(run), list(formats))


TASK = SentimentTask()
