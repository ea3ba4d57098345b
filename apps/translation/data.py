"""Translation data: the English→Spanish Apertium corpus, generated pairs, user pair files,
FreeDict, splits.

Default data (``dataset="apertium"``): real English sentences translated by Apertium
(``apps/translation/corpus.py``), built on first use and cached under ``$RNNKIT_CACHE``
(default ``~/.cache/rnnkit``) as ``translation/eng_spa.tsv`` (``eng_spa-<N>.tsv`` for a
``corpus_max_sentences=N`` subset). A share of generated English→Spanish pairs
(``generated_share``) is mixed in, so that numbers, dates, amounts and names are learned too.

Generated pairs (``dataset="generated"``, or the mixed-in share) are *real language* produced
offline from CLDR locale data (``babel``) and ``num2words``: numbers and ordinals in words,
dates, amounts of money, measurements, durations, names of countries/languages/currencies and
lists of them — each rendered by the English and the target locale's rules (``es`` or ``de``).
They are deterministic for a seed.

Held-out rule: single names (``Germany → Deutschland``) are vocabulary and always go to
training; every composite item (a number, a date, a list, an amount...) is assigned to
train/valid/test by a hash of its *source text*, after de-duplication, so no held-out source
sentence ever appears in training (tested).
"""

from __future__ import annotations

import datetime
import hashlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rnnkit.data.split import split_items
from rnnkit.errors import UserError

Pair = tuple[str, str]

SOURCE_LOCALE = "en"
TARGET_LOCALES = ("es", "de")  # generated pairs: English → Spanish or German
CORPUS_NAME = "eng_spa"  # the Apertium corpus: English → Spanish
CORPUS_TARGET_LOCALE = "es"

UNITS = (
    "length-kilometer", "length-meter", "length-centimeter", "length-millimeter",
    "length-mile", "length-foot", "length-inch", "mass-kilogram", "mass-gram", "mass-pound",
    "mass-ton", "volume-liter", "volume-milliliter", "volume-gallon", "duration-hour",
    "duration-minute", "duration-second", "duration-day", "duration-week", "duration-month",
    "duration-year", "temperature-celsius", "speed-kilometer-per-hour", "area-hectare",
    "area-square-meter", "digital-megabyte", "digital-gigabyte", "energy-kilowatt-hour",
    "power-watt", "pressure-hectopascal",
)
CURRENCY_CODES = ("EUR", "USD", "GBP", "CHF", "JPY", "CNY", "SEK", "NOK", "DKK", "PLN",
                  "CZK", "CAD", "AUD", "INR", "BRL", "RUB", "TRY", "MXN", "ZAR", "KRW")


DATASETS = ("apertium", "generated")


@dataclass
class Splits:
    train: list[Pair]
    valid: list[Pair]
    test: list[Pair]
    test_generated: list[Pair] = field(default_factory=list)


def _names(kind: str, target_locale: str = "de") -> list[Pair]:
    """(English, target) names of countries, languages or currencies from CLDR."""
    from babel import Locale

    source, target = Locale(SOURCE_LOCALE), Locale(target_locale)
    tables = {"territories": lambda loc: loc.territories,
              "languages": lambda loc: loc.languages,
              "currencies": lambda loc: loc.currencies}[kind]
    src_table, tgt_table = tables(source), tables(target)
    pairs = []
    for code in sorted(src_table):
        if kind == "territories" and not (len(code) == 2 and code.isalpha()):
            continue  # regions like "001" (World) or "EU" aliases stay out
        if kind == "languages" and len(code) != 2:
            continue  # the ~180 ISO 639-1 languages
        if kind == "currencies" and "(" in src_table[code]:
            continue  # historical variants "German Mark (1948–2001)"
        if code in tgt_table and len(src_table[code]) <= 32:
            pairs.append((str(src_table[code]), str(tgt_table[code])))
    return pairs


def _number(rng: np.random.Generator, target: str) -> Pair:
    from num2words import num2words

    n = int(rng.choice([rng.integers(0, 100), rng.integers(100, 1000), rng.integers(1000, 10000)]))
    return num2words(n, lang=SOURCE_LOCALE), num2words(n, lang=target)


def _ordinal(rng: np.random.Generator, target: str) -> Pair:
    from num2words import num2words

    n = int(rng.integers(1, 200))
    return (num2words(n, lang=SOURCE_LOCALE, to="ordinal"),
            num2words(n, lang=target, to="ordinal"))


def _date(rng: np.random.Generator, target: str) -> Pair:
    from babel.dates import format_date

    day = datetime.date(1950, 1, 1) + datetime.timedelta(days=int(rng.integers(0, 100 * 365)))
    style = str(rng.choice(["full", "long"]))
    return (format_date(day, style, locale=SOURCE_LOCALE),
            format_date(day, style, locale=target))


def _measurement(rng: np.random.Generator, target: str) -> Pair:
    from babel.units import format_unit
    from num2words import num2words

    unit = str(rng.choice(UNITS))
    value = int(rng.integers(2, 1000))
    if rng.random() < 0.3:  # the amount in words: "twelve kilometers" → "zwölf Kilometer"
        source = format_unit(value, unit, length="long", locale=SOURCE_LOCALE)
        translated = format_unit(value, unit, length="long", locale=target)
        return (source.replace(str(value), num2words(value, lang=SOURCE_LOCALE), 1),
                translated.replace(str(value), num2words(value, lang=target), 1))
    return (format_unit(value, unit, length="long", locale=SOURCE_LOCALE),
            format_unit(value, unit, length="long", locale=target))


def _money(rng: np.random.Generator, target: str) -> Pair:
    from babel.numbers import format_currency

    code = str(rng.choice(CURRENCY_CODES))
    amount = round(float(rng.integers(1, 100000)) / float(rng.choice([1, 100])), 2)
    style = str(rng.choice(["standard", "name"]))
    return (format_currency(amount, code, format_type=style, locale=SOURCE_LOCALE),
            format_currency(amount, code, format_type=style, locale=target))


def _duration(rng: np.random.Generator, target: str) -> Pair:
    from babel.dates import format_timedelta

    seconds = int(rng.choice([60, 3600, 86400, 7 * 86400])) * int(rng.integers(2, 60))
    delta = datetime.timedelta(seconds=seconds)
    direction = bool(rng.random() < 0.5)
    return (format_timedelta(delta, add_direction=direction, locale=SOURCE_LOCALE),
            format_timedelta(delta, add_direction=direction, locale=target))


def _name_list_factory(names: list[Pair]) -> Callable[[np.random.Generator, str], Pair]:
    def make(rng: np.random.Generator, target: str) -> Pair:
        from babel.lists import format_list

        count = int(rng.choice([2, 2, 3]))
        chosen = [names[i] for i in rng.choice(len(names), size=count, replace=False)]
        style = str(rng.choice(["standard", "or"]))
        return (format_list([s for s, _ in chosen], style=style, locale=SOURCE_LOCALE),
                format_list([t for _, t in chosen], style=style, locale=target))

    return make


def generate_pairs(num_pairs: int = 24000, seed: int = 1234,
                   target: str = "de") -> tuple[list[Pair], list[Pair]]:
    """``(atoms, composites)``: single names (always training) and generated composite
    pairs (de-duplicated by source, deterministic for ``seed``), English → ``target``
    (``"es"`` or ``"de"``)."""
    if num_pairs < 1:
        raise UserError(f"`num_pairs` must be >= 1. Received: num_pairs={num_pairs}")
    if target not in TARGET_LOCALES:
        raise UserError(f"`target_language` must be one of {list(TARGET_LOCALES)}. "
                        f"Received: {target!r}")
    countries, languages, currencies = (_names("territories", target),
                                        _names("languages", target),
                                        _names("currencies", target))
    atoms = list(dict.fromkeys(countries + languages + currencies))
    generators: list[tuple[Callable[[np.random.Generator], Pair], float]] = [
        (_number, 0.22), (_ordinal, 0.04), (_date, 0.18), (_measurement, 0.16),
        (_money, 0.12), (_duration, 0.06), (_name_list_factory(countries), 0.12),
        (_name_list_factory(languages), 0.10),
    ]
    weights = np.array([w for _, w in generators])
    weights = weights / weights.sum()
    rng = np.random.default_rng(seed)
    seen = {source for source, _ in atoms}
    composites: list[Pair] = []
    attempts = 0
    while len(composites) < num_pairs and attempts < num_pairs * 20:
        attempts += 1
        make = generators[int(rng.choice(len(generators), p=weights))][0]
        source, translated = (" ".join(text.split()) for text in make(rng, target))  # NBSP
        if source not in seen:
            seen.add(source)
            composites.append((source, translated))
    return atoms, composites


def split_pairs(pairs: list[Pair], test_fraction: float, valid_fraction: float, seed: int,
                always_train: list[Pair] = ()) -> Splits:
    """Split by ``rnnkit.data.split`` on ``"<seed>:<source>"`` (after de-duplicating sources), so equal sources
    never land on both sides; ``always_train`` pairs go to training only."""
    if not 0 <= test_fraction < 1 or not 0 <= valid_fraction < 1 or \
            test_fraction + valid_fraction >= 1:
        raise UserError("`test_fraction` and `valid_fraction` must be in [0, 1) with a sum "
                        f"below 1. Received: {test_fraction}, {valid_fraction}")
    reserved = {source for source, _ in always_train}
    unique = {}
    for source, target in pairs:
        if source not in reserved:
            unique.setdefault(source, target)
    fractions = (1.0 - test_fraction - valid_fraction, valid_fraction, test_fraction)
    parts = split_items(list(unique.items()), lambda pair: f"{seed}:{pair[0]}", fractions)
    return Splits(list(always_train) + parts["train"], parts["validation"], parts["test"])


def cache_dir() -> Path:
    """``$RNNKIT_CACHE`` or ``~/.cache/rnnkit`` (as the sentiment corpus)."""
    return Path(os.environ.get("RNNKIT_CACHE") or Path.home() / ".cache" / "rnnkit")


def corpus_path(max_sentences: int | None = None) -> Path:
    """Where the Apertium corpus is cached (a ``max_sentences`` subset has its own file)."""
    name = CORPUS_NAME if not max_sentences else f"{CORPUS_NAME}-{int(max_sentences)}"
    return cache_dir() / "translation" / f"{name}.tsv"


def apertium_missing() -> str | None:
    """None when Apertium eng-spa runs here, else why not (one line)."""
    from apps.translation.corpus import check_apertium

    try:
        check_apertium()
    except UserError as error:
        return str(error).splitlines()[0]
    return None


def ensure_corpus(max_sentences: int | None = None,
                  log: Callable[[str], None] | None = None) -> Path:
    """The cached Apertium corpus, built on first use (``apps.translation.corpus``); a
    ``UserError`` saying how to install Apertium, or how to train without it, when it is
    neither cached nor buildable."""
    from apps.translation.corpus import build_corpus

    path = corpus_path(max_sentences)
    if path.is_file():
        return path
    reason = apertium_missing()
    if reason:
        raise UserError(
            "The default translation data is real English translated to Spanish by Apertium, "
            f"built on first use, but {reason}; or train without it: --set dataset=generated "
            "(generated English→Spanish numbers, dates and names; add --set target_language=de "
            "for the former English→German default) or --data your_pairs.tsv")
    log = log or (lambda message: print(f"translation: {message}", file=sys.stderr,
                                        flush=True))
    log(f"building the English→Spanish corpus with Apertium into {path} (once; "
        f"{'about 2-3 minutes' if not max_sentences else 'under a minute'})")
    report = build_corpus(path, max_sentences=max_sentences, log=log)
    log(f"wrote {sum(report.written.values()):,} pairs in {report.seconds:.0f} s")
    return path


def _hash_order(pairs: list[Pair], seed: int) -> list[Pair]:
    return sorted(pairs, key=lambda pair: hashlib.md5(
        f"{seed}:subset:{pair[0]}".encode()).hexdigest())


def load_splits(config) -> Splits:
    """The train/valid/test pairs for ``config`` (Apertium corpus + generated share,
    generated data, user data, FreeDict).

    With the Apertium corpus, the generated share is split like the rest, but its held-out
    pairs go to ``test_generated`` (``test`` stays real sentences only). ``max_train_pairs``
    keeps a deterministic subset of the training split (the held-out splits stay the same)."""
    from rnnkit.data.pairs import read_freedict_examples, read_pairs

    if config.dataset not in DATASETS:
        raise UserError(f"`dataset` must be one of {list(DATASETS)}. "
                        f"Received: dataset={config.dataset!r}")
    if not 0 <= config.generated_share <= 1:
        raise UserError("`generated_share` must be in [0, 1]. "
                        f"Received: generated_share={config.generated_share}")
    atoms: list[Pair] = []
    generated: list[Pair] = []
    if config.data:
        pairs = read_pairs(config.data)
    elif config.dataset == "generated":
        atoms, pairs = generate_pairs(config.num_pairs, config.seed, config.target_language)
    else:
        pairs = read_pairs(str(ensure_corpus(config.corpus_max_sentences)))
        count = int(round(config.generated_share * len(pairs)))
        if count:
            atoms, generated = generate_pairs(count, config.seed, CORPUS_TARGET_LOCALE)
            atoms = _hash_order(atoms, config.seed)[:count]  # names: no more than the share
    if config.freedict:
        pairs = pairs + read_freedict_examples()
    splits = split_pairs(pairs, config.test_fraction, config.valid_fraction, config.seed,
                         always_train=atoms)
    if generated:
        extra = split_pairs(generated, config.test_fraction, config.valid_fraction, config.seed)
        splits.train += extra.train
        splits.valid += extra.valid
        splits.test_generated = extra.test
    if config.max_train_pairs and len(splits.train) > config.max_train_pairs:
        kept = set(_hash_order(splits.train, config.seed)[: int(config.max_train_pairs)])
        splits.train = [pair for pair in splits.train if pair in kept]
    if not splits.train:
        raise UserError("No training pairs left after the split. Received: "
                        f"{len(pairs)} pairs, test_fraction={config.test_fraction}")
    return splits
