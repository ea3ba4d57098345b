"""Readers for text-classification data: CSV / TSV / JSONL files and folder-per-class trees.

Every reader returns a :class:`TextDataset` (texts, labels, example ids) together with a
:class:`ReadReport` that counts the rows it could not use, by reason, with a few examples —
bad rows are never silently dropped and never crash the reader:

* ``empty_text``: the text is missing or only whitespace;
* ``missing_label``: the label is missing or empty;
* ``unknown_label``: the label is not in the allowed ``labels`` (when given);
* ``bad_encoding``: the row (or file) is not valid UTF-8;
* ``malformed``: a JSONL line that is not a JSON object, a CSV row with too few columns.

Formats (``read_text_classification`` picks by suffix / layout):

* ``.csv`` / ``.tsv`` / ``.txt`` with a header row; the delimiter comes from the suffix
  (``.csv`` → ``,``, ``.tsv`` → tab) or is sniffed; ``text_column`` and ``label_column``
  name the columns (any number of classes).
* ``.jsonl`` / ``.ndjson``: one JSON object per line with the same two keys.
* a folder whose sub-folders are classes, holding one ``*.txt`` file per example
  (``pos/1.txt``, ``neg/2.txt``), as in aclImdb.
* a folder of splits: ``train`` / ``validation`` (or ``valid``, ``val``, ``dev``) / ``test``,
  each one of the above (``train/pos/*.txt``…, or ``train.csv``, ``test.jsonl``…).

Splits that the data does not provide are carved out deterministically from the hash of the
example id (:func:`hash_split`), so a run is reproducible without storing indices.

This module is pure Python (no TensorFlow).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rnnkit.data.split import SPLITS, hash_split
from rnnkit.errors import UserError

SPLIT_ALIASES = {
    "train": ("train", "training"),
    "validation": ("validation", "valid", "val", "dev"),
    "test": ("test", "testing"),
}
TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".jsonl", ".ndjson")
BAD_ROW_REASONS = ("empty_text", "missing_label", "unknown_label", "bad_encoding", "malformed")
# Folders never taken as classes in the folder-per-class layout (aclImdb's unlabelled reviews).
IGNORED_CLASS_FOLDERS = ("unsup",)
_MAX_EXAMPLES_PER_REASON = 3


@dataclass
class ReadReport:
    """Counts of used and rejected rows, by reason, with a few examples of each."""

    source: str = ""
    rows: int = 0
    used: int = 0
    bad: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def reject(self, reason: str, where: str) -> None:
        self.bad[reason] = self.bad.get(reason, 0) + 1
        shown = self.examples.setdefault(reason, [])
        if len(shown) < _MAX_EXAMPLES_PER_REASON:
            shown.append(where)

    @property
    def num_bad(self) -> int:
        return sum(self.bad.values())

    def merge(self, other: ReadReport) -> ReadReport:
        merged = ReadReport(
            source=", ".join(s for s in (self.source, other.source) if s),
            rows=self.rows + other.rows,
            used=self.used + other.used,
            bad=dict(self.bad),
            examples={k: list(v) for k, v in self.examples.items()},
        )
        for reason, count in other.bad.items():
            merged.bad[reason] = merged.bad.get(reason, 0) + count
            shown = merged.examples.setdefault(reason, [])
            shown.extend(other.examples.get(reason, [])[: _MAX_EXAMPLES_PER_REASON - len(shown)])
        return merged

    def summary(self) -> str:
        """One line, e.g. ``data.csv: 120 rows, 117 used, 3 bad (empty_text=2, unknown_label=1)``."""
        text = f"{self.source}: {self.rows} rows, {self.used} used, {self.num_bad} bad"
        if self.bad:
            text += " (" + ", ".join(f"{k}={v}" for k, v in sorted(self.bad.items())) + ")"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "rows": self.rows, "used": self.used,
                "bad": dict(self.bad), "bad_examples": {k: list(v) for k, v in self.examples.items()}}


@dataclass
class TextDataset:
    """Parallel lists of example ids, texts and string labels.

    ``scores`` is optional: ``None`` (no scores) or a parallel list of floats / ``None`` (e.g. the
    mean human rating behind a label, used for soft training targets).
    """

    ids: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    scores: list[float | None] | None = None

    def __len__(self) -> int:
        return len(self.texts)

    def append(self, example_id: str, text: str, label: str, score: float | None = None) -> None:
        if score is not None and self.scores is None:
            self.scores = [None] * len(self)
        self.ids.append(example_id)
        self.texts.append(text)
        self.labels.append(label)
        if self.scores is not None:
            self.scores.append(None if score is None else float(score))

    def extend(self, other: TextDataset) -> None:
        if self.scores is not None or other.scores is not None:
            self.scores = ((self.scores if self.scores is not None else [None] * len(self))
                           + (other.scores if other.scores is not None else [None] * len(other)))
        self.ids += other.ids
        self.texts += other.texts
        self.labels += other.labels

    def subset(self, indices: Iterable[int]) -> TextDataset:
        indices = list(indices)
        return TextDataset([self.ids[i] for i in indices], [self.texts[i] for i in indices],
                           [self.labels[i] for i in indices],
                           None if self.scores is None else [self.scores[i] for i in indices])

    def label_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for label in self.labels:
            counts[label] = counts.get(label, 0) + 1
        return dict(sorted(counts.items()))

    def records(self) -> list[dict[str, Any]]:
        """One ``{"id", "text", "label"}`` dict per example (plus ``"score"`` when known)."""
        scores = self.scores if self.scores is not None else [None] * len(self)
        records = []
        for example_id, text, label, score in zip(self.ids, self.texts, self.labels, scores,
                                                  strict=True):
            record: dict[str, Any] = {"id": example_id, "text": text, "label": label}
            if score is not None:
                record["score"] = score
            records.append(record)
        return records

    @classmethod
    def from_records(cls, records: Iterable[dict[str, Any]]) -> TextDataset:
        dataset = cls()
        for record in records:
            dataset.append(str(record["id"]), record["text"], str(record["label"]),
                           record.get("score"))
        return dataset

    def to_jsonl(self, path: str | Path) -> None:
        """One ``{"id", "text", "label"}`` object per line (plus ``"score"`` when known)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            for record in self.records():
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")


# ---------------------------------------------------------------------------------------------
# Splitting


def split_dataset(dataset: TextDataset, fractions: Sequence[float] = (0.8, 0.1, 0.1),
                  names: Sequence[str] = SPLITS) -> dict[str, TextDataset]:
    """Split by :func:`hash_split` of each example id."""
    indices: dict[str, list[int]] = {name: [] for name in names}
    for index, example_id in enumerate(dataset.ids):
        indices[hash_split(example_id, fractions, names)].append(index)
    return {name: dataset.subset(idx) for name, idx in indices.items()}


# ---------------------------------------------------------------------------------------------
# Readers


def _clean_label(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def _accept(dataset: TextDataset, report: ReadReport, example_id: str, text: Any, label: Any,
            labels: Sequence[str] | None, where: str) -> None:
    report.rows += 1
    if not isinstance(text, str) or not text.strip():
        report.reject("empty_text", where)
        return
    label = _clean_label(label)
    if label is None:
        report.reject("missing_label", where)
        return
    if labels is not None and label not in labels:
        report.reject("unknown_label", f"{where}: {label!r}")
        return
    report.used += 1
    dataset.append(example_id, text.strip(), label)


def _has_undecodable(text: str) -> bool:
    return any("\udc80" <= char <= "\udcff" for char in text)


def _decode_lines(path: Path, report: ReadReport) -> list[tuple[int, str | None]]:
    """(line number, text or None when that line is not UTF-8) for each line of a file."""
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    lines = []
    for number, line in enumerate(raw.splitlines(), start=1):
        try:
            lines.append((number, line.decode("utf-8")))
        except UnicodeDecodeError:
            lines.append((number, None))
    return lines


def _column_error(path: Path, kind: str, name: str, available: Sequence[str]) -> UserError:
    return UserError(
        f"{path}: no {kind} column {name!r}. Available columns: {list(available)} "
        f"(set `{kind}_column`)"
    )


def read_delimited(path: str | Path, text_column: str = "text", label_column: str = "label",
                   labels: Sequence[str] | None = None, delimiter: str | None = None,
                   ) -> tuple[TextDataset, ReadReport]:
    """Read a CSV/TSV file with a header row. Quoted fields may span lines."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"Data file not found: {path}")
    report = ReadReport(source=str(path))
    dataset = TextDataset()
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    # Undecodable bytes become lone surrogates, so one bad row costs one row, not the file.
    text = raw.decode("utf-8", errors="surrogateescape")
    if not text.strip():
        raise UserError(f"Data file is empty: {path}")
    if delimiter is None:
        suffix = path.suffix.lower()
        if suffix == ".tsv":
            delimiter = "\t"
        elif suffix == ".csv":
            delimiter = ","
        else:
            try:
                delimiter = csv.Sniffer().sniff(text[:4096], delimiters=",\t;|").delimiter
            except csv.Error:
                delimiter = ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = next(reader)
    header = [name.strip() for name in header]
    for kind, name in (("text", text_column), ("label", label_column)):
        if name not in header:
            raise _column_error(path, kind, name, header)
    text_index, label_index = header.index(text_column), header.index(label_column)
    for row in reader:
        if not row or not any(cell.strip() for cell in row):
            continue  # blank line
        row_number = reader.line_num
        where = f"line {row_number}"
        if any(_has_undecodable(cell) for cell in row):
            report.rows += 1
            report.reject("bad_encoding", where)
            continue
        if len(row) <= max(text_index, label_index):
            report.rows += 1
            report.reject("malformed", where)
            continue
        _accept(dataset, report, f"{path.name}:{row_number}", row[text_index], row[label_index],
                labels, where)
    return dataset, report


def read_jsonl(path: str | Path, text_column: str = "text", label_column: str = "label",
               labels: Sequence[str] | None = None) -> tuple[TextDataset, ReadReport]:
    """Read one JSON object per line; ``id`` is used as the example id when present."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"Data file not found: {path}")
    report = ReadReport(source=str(path))
    dataset = TextDataset()
    seen_keys: set[str] = set()
    for number, line in _decode_lines(path, report):
        where = f"line {number}"
        if line is None:
            report.rows += 1
            report.reject("bad_encoding", where)
            continue
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if not isinstance(record, dict):
            report.rows += 1
            report.reject("malformed", where)
            continue
        seen_keys.update(record)
        example_id = str(record.get("id", f"{path.name}:{number}"))
        _accept(dataset, report, example_id, record.get(text_column), record.get(label_column),
                labels, where)
    if report.rows and report.used == 0 and text_column not in seen_keys:
        raise _column_error(path, "text", text_column, sorted(seen_keys))
    if report.rows and report.used == 0 and label_column not in seen_keys:
        raise _column_error(path, "label", label_column, sorted(seen_keys))
    return dataset, report


def class_folders(root: str | Path) -> list[Path]:
    """Sub-folders of ``root`` that hold ``*.txt`` files (the classes), sorted by name."""
    root = Path(root)
    return sorted(p for p in root.iterdir()
                  if p.is_dir() and p.name not in IGNORED_CLASS_FOLDERS
                  and not p.name.startswith(".") and any(p.glob("*.txt")))


def read_folder_per_class(root: str | Path, labels: Sequence[str] | None = None,
                          ) -> tuple[TextDataset, ReadReport]:
    """Read ``root/<class>/*.txt`` (one example per file; the folder name is the label)."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"Data folder not found: {root}")
    folders = class_folders(root)
    if not folders:
        raise UserError(f"{root}: no class folders with *.txt files (expected e.g. pos/*.txt, neg/*.txt)")
    report = ReadReport(source=str(root))
    dataset = TextDataset()
    for folder in folders:
        for file in sorted(folder.glob("*.txt")):
            where = f"{folder.name}/{file.name}"
            try:
                text = file.read_bytes().decode("utf-8-sig")
            except UnicodeDecodeError:
                report.rows += 1
                report.reject("bad_encoding", where)
                continue
            _accept(dataset, report, f"{root.name}/{where}", text, folder.name, labels, where)
    return dataset, report


def read_table(path: str | Path, text_column: str = "text", label_column: str = "label",
               labels: Sequence[str] | None = None) -> tuple[TextDataset, ReadReport]:
    """A single file by suffix: ``.jsonl``/``.ndjson`` or delimited (``.csv``/``.tsv``/``.txt``)."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"Data file not found: {path}")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return read_jsonl(path, text_column, label_column, labels)
    if suffix in (".csv", ".tsv", ".txt"):
        return read_delimited(path, text_column, label_column, labels)
    raise UserError(
        f"Unsupported data file {path.name!r}: use .csv, .tsv, .jsonl or a folder per class"
    )


def _find_split(root: Path, split: str) -> Path | None:
    for alias in SPLIT_ALIASES[split]:
        folder = root / alias
        if folder.is_dir() and class_folders(folder):
            return folder
        for suffix in TABLE_SUFFIXES:
            file = root / f"{alias}{suffix}"
            if file.is_file():
                return file
    return None


def _read_any(path: Path, text_column: str, label_column: str,
              labels: Sequence[str] | None) -> tuple[TextDataset, ReadReport]:
    if path.is_dir():
        return read_folder_per_class(path, labels)
    return read_table(path, text_column, label_column, labels)


def read_text_classification(
    path: str | Path,
    text_column: str = "text",
    label_column: str = "label",
    labels: Sequence[str] | None = None,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
) -> tuple[dict[str, TextDataset], ReadReport]:
    """Read user data into ``{"train", "validation", "test"}`` splits plus one report.

    ``path`` is a file, a folder per class, or a folder of splits. Splits the data lacks are
    carved out of what it has by :func:`hash_split`: with only ``train`` given, ``fractions``
    apply; with ``train`` and ``test`` given, ``validation`` takes the validation share of
    ``train``.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"Data not found: {path}")
    if path.is_dir():
        found = {split: _find_split(path, split) for split in SPLITS}
    else:
        found = {"train": path, "validation": None, "test": None}
    if found["train"] is None:
        if class_folders(path):
            found = {"train": path, "validation": None, "test": None}
        else:
            raise UserError(
                f"{path}: expected class folders (pos/*.txt, neg/*.txt), split folders "
                f"(train/, test/) or files (train.csv, test.jsonl). Found none"
            )
    report = ReadReport()
    splits: dict[str, TextDataset] = {}
    for split, source in found.items():
        if source is None:
            continue
        data, part = _read_any(source, text_column, label_column, labels)
        splits[split] = data
        report = report.merge(part)
    train = splits.pop("train")
    missing = [s for s in SPLITS if s not in splits and s != "train"]
    if missing:
        train_share, val_share, test_share = fractions
        shares = {"train": train_share, "validation": val_share, "test": test_share}
        names = ["train", *missing]
        total = sum(shares[n] for n in names)
        carved = split_dataset(train, [shares[n] / total for n in names], names)
        splits.update(carved)
    else:
        splits["train"] = train
    if len(splits["train"]) == 0:
        raise UserError(f"{path}: no usable training examples ({report.summary()})")
    return {name: splits[name] for name in SPLITS}, report


def read_texts(path: str | Path) -> list[str]:
    """Non-empty lines of a UTF-8 text file (for ``predict --file``)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"File not found: {path}")
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# ---------------------------------------------------------------------------------------------
# Batching
