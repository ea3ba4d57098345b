"""Text-classification readers: formats, bad rows counted by reason, deterministic splits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rnnkit.data.batching import bucket_of, bucket_width_of, bucketed_batches
from rnnkit.data.split import hash_split
from rnnkit.data.text import (
    read_delimited,
    read_folder_per_class,
    read_jsonl,
    read_table,
    read_text_classification,
    split_dataset,
)
from rnnkit.errors import UserError

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "sentiment"
LABELS = ["negative", "positive"]


def test_csv_fixture_counts_every_bad_row():
    data, report = read_delimited(FIXTURE / "reviews.csv", "review", "sentiment", labels=LABELS)
    assert report.used == len(data) == 146
    assert report.bad == {"empty_text": 1, "unknown_label": 1, "missing_label": 1,
                          "bad_encoding": 1}
    assert report.rows == 150
    assert set(data.labels) == set(LABELS)
    assert "4 bad" in report.summary()
    assert report.examples["unknown_label"] == ["line 149: 'neutral'"]


def test_csv_without_allowed_labels_keeps_any_class(tmp_path):
    path = tmp_path / "three.csv"
    path.write_text('text,label\n"great, really",pos\nawful,neg\nit is a chair,neutral\n')
    data, report = read_table(path)
    assert data.texts == ["great, really", "awful", "it is a chair"]
    assert data.labels == ["pos", "neg", "neutral"]
    assert report.num_bad == 0


def test_tsv_and_missing_column(tmp_path):
    path = tmp_path / "data.tsv"
    path.write_text("sentence\tstars\nvery good\t5\nbad\t1\n\t3\n")
    data, report = read_table(path, text_column="sentence", label_column="stars")
    assert data.texts == ["very good", "bad"] and data.labels == ["5", "1"]
    assert report.bad == {"empty_text": 1}
    with pytest.raises(UserError, match="no text column 'text'.*Available columns"):
        read_table(path)


def test_jsonl_bad_rows(tmp_path):
    path = tmp_path / "data.jsonl"
    lines = [json.dumps({"id": "a", "text": "nice", "label": 1}),
             json.dumps({"text": "meh", "label": None}),
             "not json",
             json.dumps(["a", "list"]),
             json.dumps({"text": "  ", "label": 0})]
    path.write_bytes(("\n".join(lines) + "\n").encode() + b'{"text": "\xff", "label": 0}\n')
    data, report = read_jsonl(path)
    assert data.ids == ["a"] and data.labels == ["1"]
    assert report.bad == {"missing_label": 1, "malformed": 2, "empty_text": 1, "bad_encoding": 1}


def test_folder_per_class_acl_imdb_layout():
    splits, report = read_text_classification(FIXTURE / "imdb_small", labels=None)
    assert set(splits) == {"train", "validation", "test"}
    assert len(splits["test"]) == 10  # the given test/ folder, untouched
    assert len(splits["train"]) + len(splits["validation"]) == 30  # unsup/ ignored
    assert report.bad == {"bad_encoding": 1, "empty_text": 1}
    assert set(splits["train"].labels) == {"neg", "pos"}


def test_folder_per_class_single_split(tmp_path):
    for label, texts in {"happy": ["yay", "great"], "sad": ["oh no"]}.items():
        (tmp_path / label).mkdir()
        for i, text in enumerate(texts):
            (tmp_path / label / f"{i}.txt").write_text(text)
    data, report = read_folder_per_class(tmp_path)
    assert sorted(zip(data.labels, data.texts, strict=True)) == [("happy", "great"), ("happy", "yay"),
                                                    ("sad", "oh no")]
    assert report.num_bad == 0


def test_missing_and_unsupported(tmp_path):
    with pytest.raises(UserError, match="not found"):
        read_text_classification(tmp_path / "nope.csv")
    (tmp_path / "x.parquet").write_text("")
    with pytest.raises(UserError, match="Unsupported data file"):
        read_table(tmp_path / "x.parquet")


def test_hash_split_is_deterministic_and_close_to_fractions():
    keys = [f"source:{i}" for i in range(5000)]
    names = [hash_split(k) for k in keys]
    assert names == [hash_split(k) for k in keys]
    share = {n: names.count(n) / len(names) for n in ("train", "validation", "test")}
    assert abs(share["train"] - 0.8) < 0.03 and abs(share["test"] - 0.1) < 0.02
    data, _ = read_delimited(FIXTURE / "reviews.csv", "review", "sentiment", labels=LABELS)
    parts = split_dataset(data)
    assert sum(len(p) for p in parts.values()) == len(data)
    assert not set(parts["train"].ids) & set(parts["test"].ids)


def test_bucketed_batches_cover_everything_once():
    lengths = [3, 40, 5, 17, 33, 2, 9, 12, 60, 1]
    batches = bucketed_batches(lengths, batch_size=3, bucket_width=8, seed=1)
    assert sorted(i for b in batches for i in b) == list(range(10))
    assert bucketed_batches(lengths, 3, 8, seed=1) == batches


def test_bucket_boundaries_replace_the_bucket_width():
    lengths = [3, 40, 5, 17, 33, 2, 9, 12, 60, 1]
    assert bucket_of(lengths, 8).tolist() == [0, 5, 0, 2, 4, 0, 1, 1, 7, 0]
    assert bucket_of(lengths, boundaries=[8, 16, 32]).tolist() == [0, 3, 0, 2, 3, 0, 1, 1, 3, 0]
    assert [bucket_width_of(w, 8) for w in (1, 8, 9)] == [8, 8, 16]
    assert [bucket_width_of(w, boundaries=[8, 16]) for w in (1, 8, 9, 17)] == [8, 8, 16, 17]
    batches = bucketed_batches(lengths, 4, shuffle=False, boundaries=[8, 16, 32])
    assert batches == [[0, 2, 5, 9], [6, 7, 3, 1], [4, 8]]
