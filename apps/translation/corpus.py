"""Real English sentences translated to Spanish by Apertium: an offline parallel corpus.

Sequence-level distillation data for the translation app: the English side is real text that
the package registries hold, the Spanish side is the output of Apertium's rule-based
``eng-spa`` system (Debian ``apertium-eng-spa``), the teacher.

English sources (each one optional; a missing one is reported and skipped):

* ``sentiment`` — the hutto_ICWSM_2014 sentences (tweets, movie reviews, Amazon, NYT editorials)
  that the sentiment app reads (the ``vaderSentiment`` sdist, fetched once through pip);
* ``freedict`` — the English side of FreeDict's English→German example sentences
  (``dict-freedict-eng-deu``);
* ``fortunes`` — the fortune-cookie files: quotations, jokes, proverbs (``fortunes``,
  ``fortunes-min``; the ``art`` files left out);
* ``wordnet`` — the usage examples quoted in WordNet's glosses (``wordnet-base``);
* ``foldoc`` — the definitions of the Free On-line Dictionary of Computing (``dict-foldoc``).

Cleaning (:func:`clean_sentences`): NFC; HTML entities decoded; a text holding a control or
format character is dropped whole; texts are split into sentences; a sentence is kept when it
has 3–25 words, no URL, e-mail address or emoticon, only Latin letters, digits and ordinary
punctuation (so no markup, ``@user``/``#tag``, emoji or ``* # @`` that would be confused with
Apertium's marks), at least one lower-case letter and at most half of its letters upper case; a
first word in lower case is capitalised, and so is the pronoun ``i`` (``i'm``...). Sentences are
de-duplicated across sources ignoring case (the first source in the list keeps it).

Translation (:func:`translate`): batches go through ``apertium eng-spa`` with one blank line
between sentences. A blank line is a paragraph break for Apertium, so no transfer rule reorders
words across two sentences (a single newline does not stop it, ``-f line`` neither). Apertium
marks the words it could not handle, and they are kept visible (no ``-u``) so they can be
counted, then treated by kind:

* ``*word`` — unknown to the English analyser: the word is copied through unchanged. That is
  the right output for a name, and the wrong one for an English word the teacher lacks
  (``windshield``). ``--unknown`` chooses: ``names`` (default) keeps a pair when every ``*`` word
  is a name — capitalised, and never seen in lower case anywhere in the collected English — and
  drops it otherwise; ``copy`` keeps every pair; ``drop`` drops every pair with a ``*``. Kept
  pairs lose the ``*``;
* ``@word`` — analysed but missing from the bilingual dictionary, and ``#word`` — a Spanish form
  the generator could not inflect: the teacher's own failures, so the pair is always dropped.

Spanish case, spacing and punctuation are then tidied: the capital Apertium puts on the word after
an unknown first word (``Odysseus Ordenado su tripulación``) is undone, whitespace collapsed, no
space before
``. , ; : ! ?`` (Apertium leaves one where it deleted a word), and a question or exclamation
whose last sentence lacks its opening ``¿``/``¡`` (Apertium never writes them) gets one at the
start of that sentence.

Output: ``english<TAB>spanish<TAB>source`` lines (the Tatoeba/Anki layout that
``rnnkit.data.pairs.read_tsv_pairs`` reads; the third column names the English source and is
ignored by the reader), written to a temporary file and renamed into place.

CLI: ``python -m apps.translation.corpus build --out data/eng_spa.tsv [--max-sentences N]``.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import html
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rnnkit.errors import UserError

APERTIUM_PAIR = "eng-spa"
INSTALL_ADVICE = "apt-get install apertium apertium-eng-spa"
FORTUNES_DIR = Path("/usr/share/games/fortunes")
FORTUNE_FILES_SKIPPED = frozenset({"art", "ascii-art"})
WORDNET_DIR = Path("/usr/share/wordnet")
WORDNET_FILES = ("data.noun", "data.verb", "data.adj", "data.adv")
FOLDOC_DICT = Path("/usr/share/dictd/foldoc.dict.dz")
MIN_WORDS, MAX_WORDS = 3, 25
DEFAULT_BATCH_SIZE = 2000

DROPPED_MARKS = ("@", "#")

_URL = re.compile(r"https?:|ftp:|www\.|\b[\w.-]+@[\w-]+\.\w|\b\w[\w-]*\.(?:com|org|net|edu|gov)\b",
                  re.IGNORECASE)
_EMOTICON = re.compile(r"(?:^|\s)[:;=8][-']?[()\[\]DPpOo/\\|]+(?=\s|$)|<3")
_ALLOWED_PUNCTUATION = frozenset(" .,;:!?'\"()-/%$&+’‘“”–—…")
_WHITESPACE = re.compile(r"\s+")
_SENTENCE_END = re.compile(r"([.!?…]+[\"'’”)]*)\s+(?=[\"'‘“(]?[A-Z0-9])")
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr st jr sr vs etc prof gen col lt sgt capt rev mt no vol fig inc ltd co corp "
    "dept univ approx jan feb mar apr jun jul aug sep sept oct nov dec e.g i.e u.s a.m p.m "
    "ca cf al".split()
)
_LOWER_CASE_I = re.compile(r"(?<![\w'’-])i(?=(?:['’](?:m|ll|ve|d)\b)|(?![\w'’-]))")
_WORD = re.compile(r"\w+(?:['’-]\w+)*")
_MARKED_WORD = re.compile(r"([*#@])([\w'’-]*)")
_SPACE_BEFORE_PUNCTUATION = re.compile(r"\s+([.,;:!?]+)(?=\s|$|[\"'’”»)])")
_SPANISH_SENTENCE_START = re.compile(r"[.!?…:;]\s+")


def _has_control_characters(text: str) -> bool:
    """Whether ``text`` holds a control/format/private-use character other than tab/newline."""
    return any(unicodedata.category(char)[0] == "C" and char not in "\t\n\r" for char in text)


def _is_latin_or_allowed(char: str) -> bool:
    """Whether ``char`` may appear in a corpus sentence: a Latin letter, a digit, a space or
    ordinary punctuation."""
    if char.isdigit() or char in _ALLOWED_PUNCTUATION:
        return True
    return char.isalpha() and "LATIN" in unicodedata.name(char, "")


def split_sentences(text: str) -> list[str]:
    """``text`` (whitespace already collapsed) cut after ``. ! ? …`` (and closing quotes) that
    are followed by a capital or a digit, except after a known abbreviation or an initial."""
    sentences, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        words = text[start:match.start(1)].split()
        last = words[-1].lower().strip("\"'‘“(") if words else ""
        initial = len(last) == 1 and last.isalpha()
        if match.group(1) == "." and (last in _ABBREVIATIONS or initial):
            continue
        sentences.append(text[start:match.end(1)])
        start = match.end()
    sentences.append(text[start:])
    return [sentence.strip() for sentence in sentences if sentence.strip()]


def clean_sentence(sentence: str) -> str | None:
    """One sentence as it goes into the corpus, or ``None`` when a rule rejects it (see the
    module docstring for the rules)."""
    words = [word for word in sentence.split() if any(char.isalnum() for char in word)]
    if not MIN_WORDS <= len(words) <= MAX_WORDS:
        return None
    if _URL.search(sentence) or _EMOTICON.search(sentence):
        return None
    if not all(_is_latin_or_allowed(char) for char in sentence):
        return None
    letters = [char for char in sentence if char.isalpha()]
    upper = sum(char.isupper() for char in letters)
    if upper == len(letters) or upper * 2 > len(letters):
        return None
    sentence = _LOWER_CASE_I.sub("I", sentence)
    first = sentence.split(maxsplit=1)[0]
    if first[0].islower() and first.islower():
        sentence = sentence[0].upper() + sentence[1:]
    return sentence


def clean_sentences(text: str) -> list[str]:
    """The corpus sentences found in one raw text (a line, a fortune, an example): NFC,
    entities decoded, quotes normalised, split into sentences, each cleaned by
    :func:`clean_sentence`. A text with a control character gives nothing."""
    text = unicodedata.normalize("NFC", text)
    if _has_control_characters(text):
        return []
    text = html.unescape(text) if "&" in text else text
    text = text.replace("``", '"').replace("''", '"').replace("`", "'")
    text = _WHITESPACE.sub(" ", text).strip()
    if not text:
        return []
    cleaned = (clean_sentence(sentence) for sentence in split_sentences(text))
    return [sentence for sentence in cleaned if sentence is not None]


def sentiment_texts() -> Iterator[str]:
    """The hutto_ICWSM_2014 sentences the sentiment app trains on (fetched once via pip)."""
    from apps.sentiment.data import SOURCES, fetch_corpus, read_ground_truth

    corpus = fetch_corpus()
    for source in SOURCES:
        rows, _ = read_ground_truth(corpus / f"{source}_GroundTruth.txt", source)
        for _, _, text in rows:
            yield text


def freedict_texts() -> Iterator[str]:
    """The English side of FreeDict's English→German example sentences."""
    from rnnkit.data.pairs import read_freedict_examples

    for english, _ in read_freedict_examples():
        yield english


def fortune_entries(path: Path) -> Iterator[str]:
    """The entries of one fortune file (separated by ``%`` lines), each without its
    ``-- author`` attribution and everything after it."""
    entry: list[str] = []
    attribution = False
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.strip() == "%":
            if entry:
                yield "\n".join(entry)
            entry, attribution = [], False
        elif line.strip().startswith("--") or attribution:
            attribution = True
        else:
            entry.append(line)
    if entry:
        yield "\n".join(entry)


def fortune_texts(root: Path = FORTUNES_DIR) -> Iterator[str]:
    """Every entry of the installed fortune files (the ``art`` files left out)."""
    files = sorted(path for path in root.glob("*") if path.is_file() and not path.suffix
                   and path.name not in FORTUNE_FILES_SKIPPED) if root.is_dir() else []
    if not files:
        raise FileNotFoundError(f"No fortune files in {root} (install them with "
                                "`apt-get install fortunes fortunes-min`)")
    for path in files:
        yield from fortune_entries(path)


_WORDNET_EXAMPLE = re.compile(r'"([^"]+)"')


def wordnet_texts(root: Path = WORDNET_DIR) -> Iterator[str]:
    """The quoted usage examples of WordNet's synset glosses (``| gloss; "example"``)."""
    paths = [root / name for name in WORDNET_FILES if (root / name).is_file()]
    if not paths:
        raise FileNotFoundError(f"WordNet data not found in {root} (install it with "
                                "`apt-get install wordnet-base`)")
    for path in paths:
        with path.open(encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith(" "):  # the licence header
                    continue
                _, bar, gloss = line.partition(" | ")
                if bar:
                    yield from _WORDNET_EXAMPLE.findall(gloss)


_FOLDOC_LINK = re.compile(r"\{([^{}]*)\}")
_FOLDOC_LEAD = re.compile(r"^(?:\d+\.\s+)?(?:<[^<>]*>\s*)*(?:/[^/\s][^/]*/\s+)?")


def foldoc_paragraphs(path: Path = FOLDOC_DICT) -> Iterator[str]:
    """The definition paragraphs of FOLDOC's dictd file: the indented lines of each entry,
    joined, with ``{link}`` braces removed and the leading ``1.``, ``<domain>`` tags and
    ``/pronunciation/`` cut;
    citations (``[...]``), dates (``(1994-11-08)``) and the database header entries dropped."""
    if not path.is_file():
        raise FileNotFoundError(f"FOLDOC not found: {path} (install it with "
                                "`apt-get install dict-foldoc`)")
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as handle:
        text = handle.read()
    header = True
    for block in re.split(r"\n[ \t]*\n", text):
        if not block.startswith(" "):  # a headword
            header = block.lstrip().startswith("00")
            continue
        paragraph = " ".join(line.strip() for line in block.splitlines())
        if header or paragraph.startswith(("[", "(")):
            continue
        yield _FOLDOC_LINK.sub(r"\1", _FOLDOC_LEAD.sub("", paragraph))


SOURCES: dict[str, Callable[[], Iterable[str]]] = {
    "sentiment": sentiment_texts,
    "freedict": freedict_texts,
    "fortunes": fortune_texts,
    "wordnet": wordnet_texts,
    "foldoc": foldoc_paragraphs,
}


@dataclass
class Collected:
    """De-duplicated English sentences with the source each came from."""

    sentences: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)


def collect_sentences(sources: Sequence[str] = tuple(SOURCES),
                      log: Callable[[str], None] = lambda message: None) -> Collected:
    """Clean and de-duplicate the sentences of ``sources`` (names in :data:`SOURCES`); a source
    that is not installed is recorded in ``missing`` with the reason."""
    unknown = [name for name in sources if name not in SOURCES]
    if unknown:
        raise UserError(f"Unknown corpus source(s) {', '.join(unknown)}. "
                        f"Allowed: {', '.join(SOURCES)}")
    collected = Collected()
    seen: set[str] = set()
    for name in sources:
        count = 0
        try:
            for text in SOURCES[name]():
                for sentence in clean_sentences(text):
                    key = sentence.casefold()
                    if key not in seen:
                        seen.add(key)
                        collected.sentences.append(sentence)
                        collected.sources.append(name)
                        count += 1
        except (FileNotFoundError, UserError) as error:
            collected.missing[name] = str(error)
            log(f"{name}: skipped: {error}")
            continue
        collected.counts[name] = count
        log(f"{name}: {count:,} sentences")
    return collected


def check_apertium(command: str = "apertium", pair: str = APERTIUM_PAIR) -> None:
    """Raise a ``UserError`` with the install advice unless ``command`` runs and offers
    the ``pair`` direction."""
    if shutil.which(command) is None:
        raise UserError(f"apertium is not installed (no {command!r} on PATH): {INSTALL_ADVICE}")
    result = subprocess.run([command, "-l"], capture_output=True, text=True)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise UserError(f"{command} -l failed (exit code {result.returncode}): "
                        f"{detail[-1] if detail else 'no message'}. {INSTALL_ADVICE}")
    if pair not in result.stdout.split():
        raise UserError(f"apertium-{pair} is not installed (apertium offers: "
                        f"{' '.join(result.stdout.split()) or 'nothing'}): {INSTALL_ADVICE}")


def _run_apertium(sentences: Sequence[str], command: str, pair: str) -> list[str]:
    """One Apertium run over ``sentences``, one blank line between them; the outputs split
    back on blank lines (a bad count is handled by the caller)."""
    text = "\n\n".join(sentences) + "\n"
    result = subprocess.run([command, pair], input=text, capture_output=True, text=True,
                            encoding="utf-8")
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise UserError(f"{command} {pair} failed (exit code {result.returncode}): "
                        f"{detail[-1] if detail else 'no message'}")
    return [output.strip() for output in result.stdout.strip("\n").split("\n\n")]


def translate(sentences: Sequence[str], command: str = "apertium", pair: str = APERTIUM_PAIR,
              batch_size: int = DEFAULT_BATCH_SIZE,
              progress: Callable[[int, int], None] = lambda done, total: None) -> list[str]:
    """Apertium's raw translation (marks ``* @ #`` kept) of each sentence, in order.

    Sentences go in batches of ``batch_size``; a batch whose output does not split into as
    many paragraphs as it had sentences is halved until it does (a single sentence then
    always maps to its whole output)."""
    if batch_size < 1:
        raise UserError(f"`batch_size` must be at least 1. Received: batch_size={batch_size}")
    check_apertium(command, pair)
    outputs: list[str] = []

    def run(batch: Sequence[str]) -> list[str]:
        translated = _run_apertium(batch, command, pair)
        if len(translated) == len(batch):
            return translated
        if len(batch) == 1:
            return [" ".join(translated)]
        middle = len(batch) // 2
        return run(batch[:middle]) + run(batch[middle:])

    for start in range(0, len(sentences), batch_size):
        outputs.extend(run(sentences[start:start + batch_size]))
        progress(len(outputs), len(sentences))
    return outputs


def apertium_marks(translation: str) -> list[tuple[str, str]]:
    """``(mark, word)`` for each word Apertium marked in ``translation`` (``*``, ``@``, ``#``;
    the cleaned English has none of these characters, so each one is a mark, even inside a
    token: ``3*DS``)."""
    return [(match.group(1), match.group(2)) for match in _MARKED_WORD.finditer(translation)]


def mark_kind(translation: str, common_words: Collection[str] = frozenset()) -> str:
    """How a raw translation is marked: ``failed`` (an ``@`` or ``#``), ``unknown`` (a ``*``
    word that is not a name), ``name`` (every ``*`` word is one) or ``clean``.

    A name is a capitalised word whose lower-case form is not in ``common_words`` (the words
    seen in lower case in the English text), so ``*Likeable`` opening a sentence is no name."""
    marks = apertium_marks(translation)
    if any(mark in DROPPED_MARKS for mark, _ in marks):
        return "failed"
    if any(not word[:1].isupper() or word.lower() in common_words for _, word in marks):
        return "unknown"
    return "name" if marks else "clean"


def lower_case_words(sentences: Iterable[str]) -> set[str]:
    """The words that occur in lower case somewhere in ``sentences`` (common words, not names),
    for :func:`mark_kind`."""
    return {word for sentence in sentences for word in _WORD.findall(sentence) if word.islower()}


_KEPT_KINDS = {"copy": {"clean", "name", "unknown"}, "names": {"clean", "name"},
               "drop": {"clean"}}
UNKNOWN_POLICIES = tuple(_KEPT_KINDS)


def tidy_spanish(text: str) -> str:
    """Apertium's Spanish with whitespace collapsed, no space before ``. , ; : ! ?`` and the
    opening ``¿``/``¡`` added to a final question/exclamation sentence that lacks it."""
    text = _SPACE_BEFORE_PUNCTUATION.sub(r"\1", _WHITESPACE.sub(" ", text).strip())
    for closing, opening in (("?", "¿"), ("!", "¡")):
        if text.rstrip("\"'’”»)").endswith(closing):
            starts = [match.end() for match in _SPANISH_SENTENCE_START.finditer(text)]
            start = starts[-1] if starts else 0
            if opening not in text[start:]:
                lead = len(text[start:]) - len(text[start:].lstrip("\"'‘“«("))
                text = text[:start + lead] + opening + text[start + lead:]
            break
    return text


_UNKNOWN_START = re.compile(r"^(\W*\*[\w'’-]+\W*\s+)([A-ZÁÉÍÓÚÑ])(?=[a-záéíóúñü])(\w*)")


def lower_case_after_unknown_start(translation: str, english: str) -> str:
    """Apertium's raw ``translation`` with the capital it wrongly gives the word after an
    unknown first word (``*Odysseus Ordenado su tripulación``) undone, unless the English
    has that word capitalised too."""
    match = _UNKNOWN_START.match(translation)
    if match is None or match.group(2) + match.group(3) in english.split():
        return translation
    return f"{match.group(1)}{match.group(2).lower()}{translation[match.end(2):]}"


def resolve_marks(translation: str, unknown: str = "names",
                  common_words: Collection[str] = frozenset()) -> str | None:
    """The Spanish side of a pair from Apertium's raw ``translation`` (marks removed, tidied
    by :func:`tidy_spanish`), or ``None`` when the ``unknown`` policy (``copy``, ``names``,
    ``drop``; names as :func:`mark_kind` tells them with ``common_words``) or an ``@``/``#``
    mark drops the pair."""
    if unknown not in _KEPT_KINDS:
        raise UserError(f"`unknown` must be one of {', '.join(UNKNOWN_POLICIES)}. "
                        f"Received: unknown={unknown!r}")
    if mark_kind(translation, common_words) not in _KEPT_KINDS[unknown]:
        return None
    return tidy_spanish(_MARKED_WORD.sub(r"\2", translation)) or None


def _tsv_field(text: str) -> str:
    return _WHITESPACE.sub(" ", text).strip()


def write_pairs(path: str | Path, rows: Iterable[tuple[str, str, str]]) -> int:
    """Write ``english<TAB>spanish<TAB>source`` rows to ``path`` atomically (a temporary file
    in the same folder, renamed into place); returns the number of rows."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial",
                                         dir=path.parent)
    count = 0
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as out:
            for english, spanish, source in rows:
                out.write(f"{_tsv_field(english)}\t{_tsv_field(spanish)}\t{source}\n")
                count += 1
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp's 0600 would hide the corpus from others
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return count


def _selection_key(sentence: str) -> str:
    return hashlib.md5(sentence.encode("utf-8")).hexdigest()


@dataclass
class BuildReport:
    """What a build collected (``sentences`` per source), translated (``selected``), how the
    translations were marked (``kinds``: see :func:`mark_kind`) and what it wrote
    (``written`` pairs per source)."""

    sentences: dict[str, int]
    missing: dict[str, str]
    selected: int
    kinds: dict[str, int]
    written: dict[str, int]
    seconds: float


def build_corpus(out: str | Path, max_sentences: int | None = None,
                 sources: Sequence[str] = tuple(SOURCES), unknown: str = "names",
                 command: str = "apertium", batch_size: int = DEFAULT_BATCH_SIZE,
                 log: Callable[[str], None] = lambda message: None) -> BuildReport:
    """Collect, translate and write the corpus to ``out`` (see the module docstring).

    With ``max_sentences`` a deterministic subset is translated: the sentences with the
    smallest MD5 of their text, which mixes the sources evenly; the file keeps source order."""
    started = time.monotonic()
    if max_sentences is not None and max_sentences < 1:
        raise UserError(f"--max-sentences must be at least 1. Received: {max_sentences}")
    if unknown not in UNKNOWN_POLICIES:
        raise UserError(f"--unknown must be one of {', '.join(UNKNOWN_POLICIES)}. "
                        f"Received: {unknown!r}")
    check_apertium(command)
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"Cannot write {out}: {error.strerror or error}") from None
    if not os.access(out.parent, os.W_OK):
        raise UserError(f"Cannot write {out}: {out.parent} is not writable")
    collected = collect_sentences(sources, log)
    indices: Sequence[int] = range(len(collected.sentences))
    if max_sentences is not None and max_sentences < len(collected.sentences):
        chosen = sorted(indices, key=lambda i: _selection_key(collected.sentences[i]))
        indices = sorted(chosen[:max_sentences])
    english = [collected.sentences[i] for i in indices]
    if not english:
        raise UserError("No English sentences found: install at least one source "
                        f"({'; '.join(collected.missing.values()) or 'all were empty'})")
    log(f"translating {len(english):,} sentences with {command} {APERTIUM_PAIR}")

    def progress(done: int, total: int) -> None:
        log(f"translated {done:,}/{total:,} ({time.monotonic() - started:.0f} s)")

    spanish = translate(english, command=command, batch_size=batch_size, progress=progress)
    common_words = lower_case_words(collected.sentences)
    kinds = {kind: 0 for kind in ("clean", "name", "unknown", "failed")}
    written = {name: 0 for name in collected.counts}
    rows = []
    for index, source_text, raw in zip(indices, english, spanish, strict=True):
        raw = lower_case_after_unknown_start(raw, source_text)
        kinds[mark_kind(raw, common_words)] += 1
        resolved = resolve_marks(raw, unknown, common_words)
        if resolved is not None:
            source = collected.sources[index]
            rows.append((source_text, resolved, source))
            written[source] += 1
    write_pairs(out, rows)
    return BuildReport(sentences=collected.counts, missing=collected.missing,
                       selected=len(english), kinds=kinds, written=written,
                       seconds=time.monotonic() - started)


def _log(message: str) -> None:
    print(f"corpus: {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """``build``: collect, translate and write the corpus, with progress and a summary on
    stderr; an error is one ``error:`` line and exit code 2."""
    parser = argparse.ArgumentParser(prog="python -m apps.translation.corpus",
                                     description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="build the English→Spanish TSV corpus")
    build.add_argument("--out", required=True, type=Path, help="TSV file to write")
    build.add_argument("--max-sentences", type=int, default=None,
                       help="translate at most N sentences (a deterministic mix of sources)")
    build.add_argument("--sources", default=",".join(SOURCES),
                       help=f"comma-separated subset of {','.join(SOURCES)} (default: all)")
    build.add_argument("--unknown", choices=UNKNOWN_POLICIES, default="names",
                       help="pairs with words unknown to Apertium (*word): keep all (copy), "
                            "keep those whose unknown words are all names (names), or drop")
    build.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE,
                       help="sentences per apertium run")
    args = parser.parse_args(argv)
    try:
        sources = [name.strip() for name in args.sources.split(",") if name.strip()]
        report = build_corpus(args.out, max_sentences=args.max_sentences, sources=sources,
                              unknown=args.unknown, batch_size=args.batch_size, log=_log)
    except (UserError, FileNotFoundError, OSError) as error:
        print(f"error: {str(error).splitlines()[0]}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 2
    kinds = report.kinds
    _log(f"translated {report.selected:,}: {kinds['clean']:,} unmarked, {kinds['name']:,} with "
         f"unknown names only (*Name), {kinds['unknown']:,} with other unknown words (*word), "
         f"{kinds['failed']:,} with @/# (always dropped)")
    per_source = ", ".join(f"{name} {count:,}" for name, count in report.written.items())
    _log(f"wrote {sum(report.written.values()):,} pairs ({per_source}; --unknown "
         f"{args.unknown}) to {args.out} in {report.seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
