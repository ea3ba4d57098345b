"""Translation data: generated English→German pairs, user pair files, FreeDict, splits.

The default corpus is *real language* produced offline from CLDR locale data (``babel``) and
``num2words``: numbers and ordinals in words, dates, amounts of money, measurements, durations,
names of countries/languages/currencies and lists of them — each rendered by the English and
the German locale rules. It is deterministic for a seed.

Held-out rule: single names (``Germany → Deutschland``) are vocabulary and always go to
training; every composite item (a number, a date, a list, an amount...) is assigned to
train/valid/test by a hash of its *source text*, after de-duplication, so no held-out source
sentence ever appears in training (tested).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rnnkit.data.split import split_items
from rnnkit.errors import UserError

Pair = tuple[str, str]

SOURCE_LOCALE, TARGET_LOCALE = "en", "de"

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


@dataclass
class Splits:
    train: list[Pair]
    valid: list[Pair]
    test: list[Pair]


def _names(kind: str) -> list[Pair]:
    """(English, German) names of countries, languages or currencies from CLDR."""
    from babel import Locale

    source, target = Locale(SOURCE_LOCALE), Locale(TARGET_LOCALE)
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


def _number(rng: np.random.Generator) -> Pair:
    from num2words import num2words

    n = int(rng.choice([rng.integers(0, 100), rng.integers(100, 1000), rng.integers(1000, 10000)]))
    return num2words(n, lang=SOURCE_LOCALE), num2words(n, lang=TARGET_LOCALE)


def _ordinal(rng: np.random.Generator) -> Pair:
    from num2words import num2words

    n = int(rng.integers(1, 200))
    return (num2words(n, lang=SOURCE_LOCALE, to="ordinal"),
            num2words(n, lang=TARGET_LOCALE, to="ordinal"))


def _date(rng: np.random.Generator) -> Pair:
    from babel.dates import format_date

    day = datetime.date(1950, 1, 1) + datetime.timedelta(days=int(rng.integers(0, 100 * 365)))
    style = str(rng.choice(["full", "long"]))
    return (format_date(day, style, locale=SOURCE_LOCALE),
            format_date(day, style, locale=TARGET_LOCALE))


def _measurement(rng: np.random.Generator) -> Pair:
    from babel.units import format_unit
    from num2words import num2words

    unit = str(rng.choice(UNITS))
    value = int(rng.integers(2, 1000))
    if rng.random() < 0.3:  # the amount in words: "twelve kilometers" → "zwölf Kilometer"
        source = format_unit(value, unit, length="long", locale=SOURCE_LOCALE)
        target = format_unit(value, unit, length="long", locale=TARGET_LOCALE)
        return (source.replace(str(value), num2words(value, lang=SOURCE_LOCALE), 1),
                target.replace(str(value), num2words(value, lang=TARGET_LOCALE), 1))
    return (format_unit(value, unit, length="long", locale=SOURCE_LOCALE),
            format_unit(value, unit, length="long", locale=TARGET_LOCALE))


def _money(rng: np.random.Generator) -> Pair:
    from babel.numbers import format_currency

    code = str(rng.choice(CURRENCY_CODES))
    amount = round(float(rng.integers(1, 100000)) / float(rng.choice([1, 100])), 2)
    style = str(rng.choice(["standard", "name"]))
    return (format_currency(amount, code, format_type=style, locale=SOURCE_LOCALE),
            format_currency(amount, code, format_type=style, locale=TARGET_LOCALE))


def _duration(rng: np.random.Generator) -> Pair:
    from babel.dates import format_timedelta

    seconds = int(rng.choice([60, 3600, 86400, 7 * 86400])) * int(rng.integers(2, 60))
    delta = datetime.timedelta(seconds=seconds)
    direction = bool(rng.random() < 0.5)
    return (format_timedelta(delta, add_direction=direction, locale=SOURCE_LOCALE),
            format_timedelta(delta, add_direction=direction, locale=TARGET_LOCALE))


def _name_list_factory(names: list[Pair]) -> Callable[[np.random.Generator], Pair]:
    def make(rng: np.random.Generator) -> Pair:
        from babel.lists import format_list

        count = int(rng.choice([2, 2, 3]))
        chosen = [names[i] for i in rng.choice(len(names), size=count, replace=False)]
        style = str(rng.choice(["standard", "or"]))
        return (format_list([s for s, _ in chosen], style=style, locale=SOURCE_LOCALE),
                format_list([t for _, t in chosen], style=style, locale=TARGET_LOCALE))

    return make


def generate_pairs(num_pairs: int = 24000, seed: int = 1234) -> tuple[list[Pair], list[Pair]]:
    """``(atoms, composites)``: single names (always training) and generated composite
    pairs (de-duplicated by source, deterministic for ``seed``)."""
    if num_pairs < 1:
        raise UserError(f"`num_pairs` must be >= 1. Received: num_pairs={num_pairs}")
    countries, languages, currencies = (_names("territories"), _names("languages"),
                                        _names("currencies"))
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
        source, target = (" ".join(text.split()) for text in make(rng))  # NBSP → space
        if source not in seen:
            seen.add(source)
            composites.append((source, target))
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


def load_splits(config) -> Splits:
    """The train/valid/test pairs for ``config`` (generated data, user data, FreeDict)."""
    from rnnkit.data.pairs import read_freedict_examples, read_pairs

    if config.data:
        atoms, pairs = [], read_pairs(config.data)
    else:
        atoms, pairs = generate_pairs(config.num_pairs, config.seed)
    if config.freedict:
        pairs = pairs + read_freedict_examples()
    splits = split_pairs(pairs, config.test_fraction, config.valid_fraction, config.seed,
                         always_train=atoms)
    if not splits.train:
        raise UserError("No training pairs left after the split. Received: "
                        f"{len(pairs)} pairs, test_fraction={config.test_fraction}")
    return splits
