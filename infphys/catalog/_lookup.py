"""Forgiving look-up of catalog entries by any of their names.

A catalog (GPUs, models) keeps its entries by key. :func:`name_index` maps every name an entry
goes by (key, display name, aliases), as a normalising function rewrites it, to that key;
:func:`find_entry` looks a user's string up the same way and raises one error naming the
argument and the known keys when nothing matches. Assumes the normaliser maps no two entries'
names to the same string (a later entry would win).

>>> index = name_index({"h200-sxm": ("H200 SXM", "h200")}, str.lower)
>>> find_entry("gpu", "GPU", "h200", {"h200-sxm": 141}, index, str.lower)
141
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TypeVar

__all__ = ["find_entry", "name_index"]

EntryT = TypeVar("EntryT")


def name_index(
    names_by_key: Mapping[str, Iterable[str]], normalise: Callable[[str], str]
) -> dict[str, str]:
    """Each normalised name (the key itself included) to its entry's key."""
    index: dict[str, str] = {}
    for key, names in names_by_key.items():
        for name in (key, *names):
            index[normalise(name)] = key
    return index


def find_entry(
    argument: str,
    noun: str,
    key: object,
    entries: Mapping[str, EntryT],
    index: Mapping[str, str],
    normalise: Callable[[str], str],
) -> EntryT:
    """The entry whose name ``key`` is once normalised.

    Raises:
        ValueError: naming ``argument`` and the known keys, for a string no entry goes by or a
            value that is not a string.
    """
    if isinstance(key, str):
        hit = index.get(normalise(key))
        if hit is not None:
            return entries[hit]
    known = ", ".join(entries)
    raise ValueError(f"{argument}: unknown {noun} {key!r}; known: {known}")
