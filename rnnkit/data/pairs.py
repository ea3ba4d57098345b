"""Readers for parallel text (sentence pairs).

Formats:

* Tatoeba / Anki / manythings.org ``*.txt``/``*.tsv``: one pair per line,
  ``source<TAB>target[<TAB>attribution...]`` (extra columns ignored) — :func:`read_tsv_pairs`;
* two plain parallel files, one sentence per line per side (``train.en`` + ``train.de``) —
  :func:`read_parallel_files`;
* the example sentences of Debian's FreeDict English–German dictionary
  (``dict-freedict-eng-deu``) — :func:`read_freedict_examples`.

:func:`read_pairs` picks the reader from a path; training batches them with
``rnnkit.data.batching.bucketed_dataset`` (``apps.translation.task.pair_batches``).
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

from rnnkit.errors import UserError

Pair = tuple[str, str]

FREEDICT_ENG_DEU = Path("/usr/share/dictd/freedict-eng-deu.dict.dz")
PARALLEL_PAIR_NAMES = (("source.txt", "target.txt"), ("src.txt", "tgt.txt"))


def _read_lines(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise UserError(f"{path} is not UTF-8 text: {error}") from None
    return text.splitlines()


def read_tsv_pairs(path: str | Path, source_column: int = 0, target_column: int = 1,
                   skip_header: bool = False) -> list[Pair]:
    """Pairs from a tab-separated file (Tatoeba/Anki: ``english<TAB>french<TAB>attribution``).

    Blank lines are skipped; a non-blank line with too few columns or an empty side is a
    ``UserError`` naming the line.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Pairs file not found: {path}")
    needed = max(source_column, target_column) + 1
    pairs: list[Pair] = []
    lines = _read_lines(path)
    for number, line in enumerate(lines[1:] if skip_header else lines,
                                  start=2 if skip_header else 1):
        if not line.strip():
            continue
        columns = line.split("\t")
        if len(columns) < needed:
            raise UserError(
                f"{path}:{number}: expected at least {needed} tab-separated columns "
                f"(source<TAB>target). Received: {len(columns)} column(s): {line[:80]!r}"
            )
        source, target = columns[source_column].strip(), columns[target_column].strip()
        if not source or not target:
            raise UserError(f"{path}:{number}: empty source or target. Received: {line[:80]!r}")
        pairs.append((source, target))
    if not pairs:
        raise UserError(f"{path} holds no sentence pairs. Received: an empty file")
    return pairs


def read_parallel_files(source_path: str | Path, target_path: str | Path) -> list[Pair]:
    """Pairs from two files with one sentence per line (line ``i`` of each is a pair)."""
    source_path, target_path = Path(source_path), Path(target_path)
    for path in (source_path, target_path):
        if not path.is_file():
            raise FileNotFoundError(f"Parallel text file not found: {path}")
    sources, targets = _read_lines(source_path), _read_lines(target_path)
    # A trailing empty line at the end of one file only is harmless.
    while sources and not sources[-1].strip():
        sources.pop()
    while targets and not targets[-1].strip():
        targets.pop()
    if len(sources) != len(targets):
        raise UserError(
            f"Parallel files must have the same number of lines. Received: {source_path} has "
            f"{len(sources)}, {target_path} has {len(targets)}"
        )
    pairs = []
    for number, (source, target) in enumerate(zip(sources, targets, strict=True), start=1):
        source, target = source.strip(), target.strip()
        if not source and not target:
            continue
        if not source or not target:
            raise UserError(f"Line {number} is empty on one side only ({source_path}, "
                            f"{target_path}). Received: {source!r} / {target!r}")
        pairs.append((source, target))
    if not pairs:
        raise UserError(f"{source_path} and {target_path} hold no sentence pairs")
    return pairs


_FREEDICT_EXAMPLE = re.compile(r'^\s+"(?P<en>[A-Z][^"]*[.?!])"\s+-\s+(?P<de>.+)$')
_SENTENCE_ALTERNATIVES = re.compile(r"(?<=[.?!]),\s+")


def read_freedict_examples(path: str | Path = FREEDICT_ENG_DEU) -> list[Pair]:
    """English→German example *sentences* from a FreeDict dictd file (``*.dict.dz``).

    Entries carry examples as ``"English sentence."  - German sentence., alternative.``; only
    examples that look like sentences (capitalised, ending in ``. ? !``) are kept, with the
    first German alternative. Duplicates are dropped; order is the file's.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"FreeDict file not found: {path} (install it with "
            "`apt-get install dict-freedict-eng-deu`)"
        )
    opener = gzip.open if path.suffix == ".dz" or path.suffix == ".gz" else open
    seen: set[str] = set()
    pairs: list[Pair] = []
    with opener(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            match = _FREEDICT_EXAMPLE.match(line.rstrip("\n"))
            if not match:
                continue
            english = match["en"].strip()
            german = _SENTENCE_ALTERNATIVES.split(match["de"].strip())[0].strip()
            if not german or english in seen or german[-1] not in ".?!":
                continue
            seen.add(english)
            pairs.append((english, german))
    return pairs


def read_pairs(path: str | Path, target_path: str | Path | None = None) -> list[Pair]:
    """Read pairs from ``path``: a TSV file, a FreeDict ``.dict.dz``, two parallel files
    (``path`` + ``target_path``), or a directory holding ``source.txt`` + ``target.txt``
    (or ``src.txt`` + ``tgt.txt``) or exactly one ``*.tsv``/``*.txt`` pairs file."""
    path = Path(path)
    if target_path is not None:
        return read_parallel_files(path, target_path)
    if path.is_dir():
        for source_name, target_name in PARALLEL_PAIR_NAMES:
            if (path / source_name).is_file() and (path / target_name).is_file():
                return read_parallel_files(path / source_name, path / target_name)
        candidates = sorted(list(path.glob("*.tsv")) + list(path.glob("*.txt")))
        if len(candidates) == 1:
            return read_tsv_pairs(candidates[0])
        raise UserError(
            f"{path} must hold source.txt + target.txt or exactly one .tsv/.txt pairs file. "
            f"Received: {[p.name for p in candidates]}"
        )
    if not path.exists():
        raise FileNotFoundError(f"Pairs data not found: {path}")
    if path.name.endswith(".dict.dz"):
        return read_freedict_examples(path)
    return read_tsv_pairs(path)
