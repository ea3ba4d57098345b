"""Sentiment data: the default hutto_ICWSM_2014 corpus, user data, and negation pairs.

Default data
------------
The human-rated sentences of Hutto & Gilbert (ICWSM 2014, "VADER"), shipped inside the
*source* distribution of ``vaderSentiment==3.3.2`` (``additional_resources/
hutto_ICWSM_2014.tar.gz``), MIT licence. Four ``*_GroundTruth.txt`` files, one sentence per
line as ``id<TAB>mean rating<TAB>text`` (ratings −4..+4 averaged over ~20 raters):

=========================  =========  =====================
file                       sentences  id form
=========================  =========  =====================
tweets                     4,200      ``12``
movieReviewSnippets        10,605     ``12``
amazonReviewSnippets       3,708      ``3_7`` (review_sentence)
nytEditorialSnippets       5,190      ``3_7``
=========================  =========  =====================

Also from the sdist: ``vaderSentiment/vader_lexicon.txt``, ~7.5k words/emoticons rated on the
same scale by 10 raters; with ``lexicon_examples`` (default) the non-neutral ones (~6.6k) are
added to the training split as one-word examples — both the RNN and the TF-IDF baseline see
them. (The ``*_anonDataRatings.txt`` files hold the individual ratings, a UTF-8 BOM in one of them;
they are not needed.) Labels: ``negative`` for mean < −``neutral_band``, ``positive`` for
mean > ``neutral_band``; the neutral band is dropped (≈19.1k sentences remain at 0.5) from
every evaluation split. Every corpus sentence keeps its mean rating as ``score``. With
``neutral_examples`` (off by default) the neutral sentences of the *training* buckets (~3.7k) come
back as a separate ``train_neutral`` split that the RNN trains on with soft targets
``P(positive) = sigmoid(soft_target_slope * rating)``; the TF-IDF baseline and the
validation/test splits never see them.

Split: fixed and documented — ``hash_split("<source>:<id>")`` (MD5 of the sentence id,
buckets 0–7999 train, 8000–8999 validation, 9000–9999 test of 10,000), i.e. ≈80/10/10,
independent of file order and of the neutral band.

Fetched once through the package index (``pip download --no-deps --no-binary :all:
vaderSentiment==3.3.2``) and cached under ``$RNNKIT_CACHE`` (default ``~/.cache/rnnkit``)
as ``hutto_ICWSM_2014/``. Offline: put that folder (or the sdist) there yourself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.data.split import hash_split
from rnnkit.data.text import ReadReport, TextDataset, read_text_classification
from rnnkit.errors import UserError

VADER_PACKAGE = "vaderSentiment==3.3.2"
CORPUS_NAME = "hutto_ICWSM_2014"
SOURCES = ("tweets", "movieReviewSnippets", "amazonReviewSnippets", "nytEditorialSnippets")
CORPUS_FILES = tuple(f"{source}_GroundTruth.txt" for source in SOURCES)
LEXICON_FILE = "vader_lexicon.txt"
LABELS = ("negative", "positive")

# Order matters: pairs of texts with the same words (or one word apart) and opposite labels.
# Each entry: (text_a, label_a, text_b, label_b).
NEGATION_PAIRS: tuple[tuple[str, str, str, str], ...] = (
    ("good", "positive", "not good", "negative"),
    ("bad", "negative", "not bad", "positive"),
    ("the movie was good", "positive", "the movie was not good", "negative"),
    ("i liked it", "positive", "i did not like it", "negative"),
    ("this is a great phone", "positive", "this is not a great phone", "negative"),
    ("the food was terrible", "negative", "the food was not terrible", "positive"),
    ("i love this product", "positive", "i don't love this product", "negative"),
    ("it works", "positive", "it never works", "negative"),
    ("a funny film", "positive", "a film that is never funny", "negative"),
    ("the service was helpful", "positive", "the service was not helpful at all", "negative"),
    ("good but boring", "negative", "boring but good", "positive"),
    ("the acting is great but the plot is awful", "negative",
     "the plot is awful but the acting is great", "positive"),
    ("cheap but it breaks easily", "negative", "it breaks easily but it is cheap", "positive"),
    ("beautiful but slow", "negative", "slow but beautiful", "positive"),
    ("fun at first but disappointing", "negative", "disappointing at first but fun", "positive"),
    ("smart but dull", "negative", "dull but smart", "positive"),
    ("a nice idea but a terrible movie", "negative", "a terrible idea but a nice movie",
     "positive"),
    ("loved the start but hated the end", "negative", "hated the start but loved the end",
     "positive"),
    ("i expected it to be bad and it was", "negative",
     "i expected it to be bad but it was great", "positive"),
    ("not recommended", "negative", "highly recommended", "positive"),
)


def cache_dir() -> Path:
    """``$RNNKIT_CACHE`` or ``~/.cache/rnnkit``."""
    return Path(os.environ.get("RNNKIT_CACHE") or Path.home() / ".cache" / "rnnkit")


def _safe_extract(archive: Path, target: Path) -> None:
    with tarfile.open(archive) as tar:
        try:
            tar.extractall(target, filter="data")
        except TypeError:  # pragma: no cover - Python without extraction filters
            tar.extractall(target)  # noqa: S202


def fetch_corpus(root: Path | None = None) -> Path:
    """The cached ``hutto_ICWSM_2014`` folder; downloads the sdist once through pip."""
    root = cache_dir() if root is None else Path(root)
    corpus = root / CORPUS_NAME
    if all((corpus / name).is_file() for name in (*CORPUS_FILES, LEXICON_FILE)):
        return corpus
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        tmp = Path(tmp)
        sdists = sorted(root.glob("vaderSentiment-3.3.2.tar.gz"))
        if not sdists:
            command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary",
                       ":all:", VADER_PACKAGE, "-d", str(tmp), "--quiet"]
            result = subprocess.run(command, capture_output=True, text=True)
            sdists = sorted(tmp.glob("vaderSentiment-*.tar.gz"))
            if result.returncode != 0 or not sdists:
                detail = (result.stderr or result.stdout).strip().splitlines()
                raise UserError(
                    f"Could not download the default sentiment data ({VADER_PACKAGE} source "
                    f"distribution): {detail[-1] if detail else 'pip failed'}. Offline: put "
                    f"vaderSentiment-3.3.2.tar.gz or the {CORPUS_NAME}/ folder in {root}, "
                    "or train on your own data with --data"
                )
        _safe_extract(sdists[0], tmp / "sdist")
        inner = list((tmp / "sdist").glob(f"*/additional_resources/{CORPUS_NAME}.tar.gz"))
        if not inner:
            raise UserError(f"{sdists[0].name} has no additional_resources/{CORPUS_NAME}.tar.gz")
        _safe_extract(inner[0], tmp / "corpus")
        extracted = tmp / "corpus" / CORPUS_NAME
        staging = root / f".{CORPUS_NAME}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        for source in SOURCES:  # keep only what is used (the PDF etc. stay out of the cache)
            name = f"{source}_GroundTruth.txt"
            shutil.copy2(extracted / name, staging / name)
        lexicon = list((tmp / "sdist").glob(f"*/vaderSentiment/{LEXICON_FILE}"))
        if lexicon:
            shutil.copy2(lexicon[0], staging / LEXICON_FILE)
        readme = extracted / "_README_.txt"
        if readme.is_file():
            shutil.copy2(readme, staging / "_README_.txt")
        shutil.rmtree(corpus, ignore_errors=True)
        staging.rename(corpus)  # atomic: a killed download leaves no half-filled corpus
    return corpus


def read_ground_truth(path: Path, source: str) -> tuple[list[tuple[str, float, str]], ReadReport]:
    """``(id, mean rating, text)`` rows of one ``*_GroundTruth.txt`` file; bad rows counted."""
    report = ReadReport(source=path.name)
    rows = []
    for number, raw in enumerate(path.read_bytes().splitlines(), start=1):
        if not raw.strip():
            continue
        report.rows += 1
        try:
            line = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            report.reject("bad_encoding", f"line {number}")
            continue
        parts = line.rstrip("\r").split("\t", 2)
        if len(parts) != 3:
            report.reject("malformed", f"line {number}")
            continue
        sentence_id, rating, text = parts
        try:
            value = float(rating)
        except ValueError:
            report.reject("missing_label", f"line {number}")
            continue
        if not text.strip():
            report.reject("empty_text", f"line {number}")
            continue
        report.used += 1
        rows.append((f"{source}:{sentence_id.strip()}", value, text.strip()))
    return rows, report


def _lexicon_entries(path: Path) -> Iterator[tuple[str, float]]:
    """``(token, mean rating)`` of each well-formed line of the VADER lexicon
    (``token<TAB>mean<TAB>std<TAB>[ratings]``), in file order; other lines are skipped."""
    for raw in path.read_bytes().splitlines():
        parts = raw.decode("utf-8", errors="replace").rstrip("\r").split("\t")
        if len(parts) < 2 or not parts[0].strip():
            continue
        try:
            yield parts[0], float(parts[1])
        except ValueError:
            continue


def read_lexicon(path: Path, neutral_band: float = 0.5) -> TextDataset:
    """The VADER word/emoticon ratings (~7.5k entries rated by 10 people on the same −4..+4
    scale) as one-token training examples."""
    dataset = TextDataset()
    for token, rating in _lexicon_entries(path):
        label = rating_label(rating, neutral_band)
        if label is not None:
            dataset.append(f"lexicon:{token}", token, label)  # hard target: no score
    return dataset


def lexicon_valence(path: Path, tokens: Sequence[str], lowercase: bool = True) -> np.ndarray:
    """Each token's VADER mean rating scaled to [-1, 1] (0 for tokens the lexicon lacks)."""

    def key(token: str) -> str:
        return token.lower() if lowercase else token

    ratings = {key(token): max(-1.0, min(1.0, rating / 4.0))
               for token, rating in _lexicon_entries(path)}
    return np.array([ratings.get(key(token), 0.0) for token in tokens], dtype=np.float32)


def rating_label(rating: float, neutral_band: float = 0.5) -> str | None:
    """``negative`` / ``positive``, or ``None`` inside the neutral band ``|rating| <= band``."""
    if rating > neutral_band:
        return "positive"
    if rating < -neutral_band:
        return "negative"
    return None


def load_default_splits(neutral_band: float = 0.5, corpus: Path | None = None,
                        lexicon_examples: bool = True, neutral_examples: bool = False,
                        ) -> tuple[dict[str, TextDataset], dict[str, Any]]:
    """Train/validation/test of the default corpus and a description of how they were made.

    Corpus sentences carry their mean rating as ``score``. With ``lexicon_examples`` the VADER
    lexicon's rated words are added to the *training* split only (validation and test stay the
    corpus sentences). With ``neutral_examples`` the neutral-band sentences whose id falls in
    the training buckets come back as a fourth split ``train_neutral`` (label by the sign of
    the rating, for soft training targets only; neutral validation/test sentences are never
    used)."""
    corpus = fetch_corpus() if corpus is None else Path(corpus)
    splits = {name: TextDataset() for name in ("train", "validation", "test")}
    train_neutral = TextDataset()
    report = ReadReport()
    neutral = 0
    per_source: dict[str, int] = {}
    for source in SOURCES:
        path = corpus / f"{source}_GroundTruth.txt"
        if not path.is_file():
            raise UserError(f"Default data is incomplete: {path} is missing")
        rows, part = read_ground_truth(path, source)
        report = report.merge(part)
        for sentence_id, rating, text in rows:
            label = rating_label(rating, neutral_band)
            split = hash_split(sentence_id)
            if label is None:
                neutral += 1
                if neutral_examples and split == "train":
                    sign = "positive" if rating > 0 else "negative"
                    train_neutral.append(sentence_id, text, sign, score=rating)
                continue
            per_source[source] = per_source.get(source, 0) + 1
            splits[split].append(sentence_id, text, label, score=rating)
    lexicon_count = 0
    if lexicon_examples:
        lexicon_path = corpus / LEXICON_FILE
        if not lexicon_path.is_file():
            raise UserError(f"Default data is incomplete: {lexicon_path} is missing "
                            "(or set lexicon_examples=false)")
        lexicon = read_lexicon(lexicon_path, neutral_band)
        lexicon_count = len(lexicon)
        splits["train"].extend(lexicon)
    info = {
        "source": f"{CORPUS_NAME} from the {VADER_PACKAGE} source distribution",
        "lexicon_examples_in_train": lexicon_count,
        "corpus_dir": str(corpus),
        "labels": "mean rating > band: positive, < -band: negative",
        "neutral_band": neutral_band,
        "neutral_dropped": neutral,
        "neutral_examples_in_train": len(train_neutral) if neutral_examples else 0,
        "per_source": per_source,
        "split": "md5('<source>:<id>') buckets: 80% train, 10% validation, 10% test",
        "read": report.to_dict(),
    }
    if neutral_examples:
        splits["train_neutral"] = train_neutral
    return splits, info


def load_splits(config: Any, data: str | os.PathLike | None = None,
                ) -> tuple[dict[str, TextDataset], dict[str, Any]]:
    """Splits for training: the default corpus (``data=None``) or the user's data."""
    if data is None:
        splits, info = load_default_splits(config.neutral_band,
                                           lexicon_examples=config.lexicon_examples,
                                           neutral_examples=config.neutral_examples)
    else:
        path = Path(data)
        if not path.exists():
            raise UserError(f"Data file not found: {path}")
        splits, report = read_text_classification(
            path, config.text_column, config.label_column, labels=config.labels)
        info = {"source": str(path), "split": "given splits, missing ones by md5(id) 80/10/10",
                "read": report.to_dict(), "summary": report.summary()}
        if report.num_bad:
            print(f"warning: {report.summary()}", file=sys.stderr)
    if config.max_train_examples is not None and len(splits["train"]) > config.max_train_examples:
        # A seeded random sample: the split is ordered by source (lexicon words last or
        # first), so its head is not a fair sample of it.
        import numpy as np

        chosen = np.random.default_rng(config.seed).choice(
            len(splits["train"]), size=config.max_train_examples, replace=False)
        splits["train"] = splits["train"].subset(sorted(int(i) for i in chosen))
    info["sizes"] = {name: len(split) for name, split in splits.items()}
    info["label_counts"] = {name: split.label_counts() for name, split in splits.items()}
    return splits, info
