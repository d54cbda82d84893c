"""The numbers behind a figure: typed records, and their names in ``numbers.json``.

A figure's numbers are a frozen dataclass deriving from :class:`Numbers`. Each field is one
of three kinds:

- a number, annotated ``Annotated[T, Key("name")]``: ``numbers.json`` holds it as ``name``,
  after the prefix of the records that hold it;
- a record, or a tuple of records (:class:`Numbers`; None for none): their numbers, each
  name after the record's :attr:`~Numbers.prefix`, e.g. ``"K=8 "`` + ``"poly slope"``
  (a :class:`Named` record's prefix is its name);
- anything else names or describes the record (the kurtosis of a panel, the name of an
  architecture, the words of a table cell) and is not itself a number of ``numbers.json``.

A record whose names hold one of its values (a count at a published value) overrides
:meth:`Numbers.named`. The claims (:mod:`capopt.report.claims`) and the captions read the
fields; the names exist only for ``numbers.json``, written by :func:`flatten`, where a
reader finds each number as the caption or the table names it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Annotated, Iterator, Union, get_args, get_origin, get_type_hints

import numpy as np

from .captions import fmt

__all__ = ["Numbers", "Named", "Key", "Scalar", "flatten"]

#: A number of ``numbers.json``: an integer, a float, a word (block sizes, "yes"/"no").
Scalar = Union[int, float, str, bool, np.generic]


@dataclass(frozen=True)
class Key:
    """The name of a number in ``numbers.json``, after the prefix of its record."""

    text: str


def _keys(cls: type) -> dict[str, Key]:
    """The :class:`Key` of each annotated field of ``cls``, by field name."""
    out = {}
    for name, hint in get_type_hints(cls, include_extras=True).items():
        if get_origin(hint) is Annotated:
            out.update({name: k for k in get_args(hint)[1:] if isinstance(k, Key)})
    return out


@dataclass(frozen=True)
class Numbers:
    """Base of a figure's numbers and of the records inside them (frozen dataclasses)."""

    @property
    def prefix(self) -> str:
        """What precedes the names of this record's numbers (e.g. ``"K=8 "``); none by default."""
        return ""

    def named(self) -> Iterator[tuple[str, Scalar]]:
        """Each number with its name in ``numbers.json``, in field order."""
        keys = _keys(type(self))
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in keys:
                yield keys[f.name].text, value
                continue
            records = value if isinstance(value, tuple) else (value,)
            for record in records:
                if isinstance(record, Numbers):
                    yield from ((record.prefix + name, v) for name, v in record.named())


@dataclass(frozen=True)
class Named(Numbers):
    """A record named by its first field (an architecture, a problem, a family...), whose
    numbers are named ``"<name> <number>"``."""

    name: str

    @property
    def prefix(self) -> str:
        return f"{self.name} "


def _plain(value: Scalar) -> int | float | str:
    """A JSON-ready copy of a number: numpy scalars become Python ones, flags "yes" or "no"."""
    if isinstance(value, (bool, np.bool_)):
        return fmt(value)
    return value if isinstance(value, str) else np.asarray(value).item()


def flatten(numbers: Numbers) -> dict[str, int | float | str]:
    """``numbers`` as ``numbers.json`` holds them: name -> plain value, in field order.

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Panel(Numbers):
    ...     kurtosis: float
    ...     loss: Annotated[float, Key("loss")]
    ...     @property
    ...     def prefix(self):
    ...         return f"K={self.kurtosis:g} "
    >>> @dataclass(frozen=True)
    ... class Figure(Numbers):
    ...     panels: tuple
    ...     ordered: Annotated[bool, Key("in order")]
    >>> flatten(Figure((Panel(2.0, 0.5), Panel(8.0, 0.25)), True))
    {'K=2 loss': 0.5, 'K=8 loss': 0.25, 'in order': 'yes'}
    """
    named = list(numbers.named())
    out = {name: _plain(value) for name, value in named}
    assert len(out) == len(named), f"two numbers of {type(numbers).__name__} share a name"
    return out
