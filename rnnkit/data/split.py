"""One deterministic split for every app: the MD5 of an example's key picks its split.

The same key lands in the same split on every machine and in every order, so a split never
depends on how the data was read; training records the split it used (``RunDir.record_split``)
and evaluate / export read that record instead of splitting again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import TypeVar

SPLITS = ("train", "validation", "test")

T = TypeVar("T")


def hash_bucket(key: str, buckets: int = 1000) -> int:
    """A stable bucket in ``[0, buckets)`` from the MD5 of ``key`` (same on every machine)."""
    digest = hashlib.md5(key.encode("utf-8")).hexdigest()
    return int(digest[:8], 16) % buckets


def hash_fraction(key: str) -> float:
    """A stable position in ``[0, 1)`` from the MD5 of ``key``."""
    return hash_bucket(key, 10_000) / 10_000


def hash_split(key: str, fractions: Sequence[float] = (0.8, 0.1, 0.1),
               names: Sequence[str] = SPLITS) -> str:
    """The split name of an example, from the hash of its key: deterministic, order-free."""
    if len(fractions) != len(names):
        raise ValueError(f"`fractions` must have {len(names)} entries. Received: {list(fractions)}")
    if any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"`fractions` must be >= 0 and sum to 1. Received: {list(fractions)}")
    position = hash_fraction(key)
    total = 0.0
    for name, fraction in zip(names, fractions, strict=True):
        total += fraction
        if position < total:
            return name
    return names[-1]


def split_items(items: Sequence[T], key: Callable[[T], str],
                fractions: Sequence[float] = (0.8, 0.1, 0.1),
                names: Sequence[str] = SPLITS) -> dict[str, list[T]]:
    """``items`` grouped by :func:`hash_split` of ``key(item)``, input order kept per split."""
    groups: dict[str, list[T]] = {name: [] for name in names}
    for item in items:
        groups[hash_split(key(item), fractions, names)].append(item)
    return groups


def hash_order(keys: Sequence[str]) -> list[int]:
    """Indices of ``keys`` ordered by their hash (a fixed, order-free sample: take a prefix)."""
    return sorted(range(len(keys)), key=lambda i: (hash_bucket(keys[i], 1 << 30), i))
