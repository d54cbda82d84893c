"""Argument checks shared by every public entry point.

Each check runs once, at the public boundary, and raises with a message that names the
argument, states the requirement and shows what was received, so that the kernels behind
the boundary can assume clean float64 input.
"""

from __future__ import annotations

import concurrent.futures
import difflib
import math
import numbers
from collections.abc import Callable, Collection
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

import numpy as np

__all__ = [
    "as_float_array",
    "as_float_vector",
    "as_axis_values",
    "check_scalar",
    "check_count",
    "check_flag",
    "check_integer",
    "check_whole",
    "check_choice",
    "check_instance",
    "check_executor",
]

T = TypeVar("T")


def _describe(value: object) -> str:
    """Short description of a received value for an error message."""
    arr = np.asarray(value) if not isinstance(value, np.ndarray) else value
    if arr.ndim == 0:
        return repr(arr.item())
    return f"an array of shape {arr.shape}"


def as_float_array(value: object, name: str, *, min_ndim: int = 0,
                   allow_empty: bool = True) -> np.ndarray:
    """Convert ``value`` to a finite float64 array without mutating it.

    Anything exposing ``__array__`` (numpy arrays, lists, torch tensors on the CPU) is
    accepted; integers and booleans are promoted. The returned array may share memory with
    ``value``; callers never write into it.

    Raises
    ------
    TypeError
        If ``value`` is not numeric (strings, objects) or is complex.
    ValueError
        If it has fewer than ``min_ndim`` axes, is empty when ``allow_empty`` is false, or
        holds NaN or infinite entries.
    """
    try:
        raw = np.asarray(value)
    except Exception as exc:  # e.g. a torch tensor that requires grad
        raise TypeError(
            f"{name} must be array-like (numpy array, list, or an object with __array__), "
            f"got {type(value).__name__}: {exc}"
        ) from exc
    if raw.dtype.kind == "c":
        raise TypeError(f"{name} must be real, got a complex array of dtype {raw.dtype}")
    if raw.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be numeric, got an array of dtype {raw.dtype}")
    arr = raw.astype(np.float64, copy=False)
    if arr.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} axes, got shape {arr.shape}")
    if not allow_empty and arr.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        where = tuple(int(i) for i in bad)
        raise ValueError(
            f"{name} must be finite, got {arr[where]} at index {where if arr.ndim else '()'}"
        )
    return arr


def check_scalar(value: object, name: str, *, minimum: float | None = None) -> float:
    """Return ``value`` as a finite Python float, optionally checking ``value >= minimum``.

    Raises
    ------
    TypeError
        If ``value`` is not a real number.
    ValueError
        If it is NaN, infinite, or below ``minimum``.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}: {value!r}")
    requirement = "finite" + ("" if minimum is None else f" and >= {minimum:g}")
    try:
        x = float(value)
    except OverflowError:  # an int or Fraction past float64, e.g. 10**400
        x = math.inf
    if not np.isfinite(x) or (minimum is not None and x < minimum):
        raise ValueError(f"{name} must be {requirement}, got {_describe(value)}")
    return x


def check_count(value: object, name: str, *, maximum: int | None = None) -> int:
    """Return ``value`` as a Python int, checking it is an integer >= 1 (and <= ``maximum``).

    Raises
    ------
    TypeError
        If ``value`` is not an integer (booleans included).
    ValueError
        If it is below 1 or above ``maximum``.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}: {value!r}")
    count = int(value)
    if count < 1 or (maximum is not None and count > maximum):
        limit = f" and <= {maximum}" if maximum is not None else ""
        raise ValueError(f"{name} must be >= 1{limit}, got {count}")
    return count


def check_flag(value: object, name: str) -> bool:
    """Return ``value`` as a bool, accepting only True and False (numpy's included).

    Raises
    ------
    TypeError
        For anything else (``"yes"``, 1, None).
    """
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__}: {value!r}")
    return bool(value)


def check_integer(value: Any, name: str, *, minimum: int = 1) -> int:
    """Return ``value`` as a Python int, checking it is an integer >= ``minimum``.

    Unlike :func:`check_count`, every failure (a float, a boolean, too small) is one
    ValueError, "<name> must be an integer >= <minimum>, got <value>".
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_whole(value: Any, name: str, *, minimum: int, unit: str) -> int:
    """Return a whole number of ``unit`` (given as an int or an integral float) as an int.

    Raises
    ------
    ValueError
        If ``value`` is a boolean, not a whole number, or below ``minimum``.
    """
    if isinstance(value, (bool, np.bool_)) or not float(value).is_integer() or value < minimum:
        raise ValueError(f"{name} must be a whole number of {unit} >= {minimum}, got {value!r}")
    return int(value)


def check_choice(value: T, name: str, choices: Collection[T]) -> T:
    """Return ``value`` if it is one of ``choices``; the message lists ``choices`` as given."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def check_instance(value: object, name: str, kind: type[T], expected: str) -> T:
    """Return ``value`` if it is an instance of ``kind``.

    Raises
    ------
    TypeError
        Otherwise, with "<name> must be <expected>, got <type name>"; ``expected`` says how
        to build the right kind (e.g. "QuadraticCurves (capopt.quadratic(...))").
    """
    if not isinstance(value, kind):
        raise TypeError(f"{name} must be {expected}, got {type(value).__name__}")
    return value


def check_model(curves: Any, name: str, model: str, expected: str) -> Any:
    """Return ``curves`` if it is a family whose explicit model is the one named ``model``
    (:attr:`capopt.models.ExplicitModel.name`, as the family declares it through
    :meth:`~capopt.curves.LossCurves.model`): the trainers and realisations of a model take
    any family that says it has that model, subclasses included.

    Raises
    ------
    TypeError
        Otherwise, with "<name> must be <expected>, got <type name>".
    """
    declared = getattr(curves, "model", None)
    found = declared() if callable(declared) else None
    if getattr(found, "name", None) != model:
        raise TypeError(f"{name} must be {expected}, got {type(curves).__name__}")
    return curves


def check_keywords(given: Iterable[str], accepted: Sequence[str], where: str) -> None:
    """Raise for the first of ``given`` that is not one of ``accepted``, naming the closest.

    Raises
    ------
    TypeError
        "<where> got an unknown option <name> (did you mean <closest>?); it accepts <accepted>",
        the kind of error Python raises for an unexpected keyword argument.
    """
    for name in given:
        if name not in accepted:
            close = difflib.get_close_matches(name, accepted, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise TypeError(f"{where} got an unknown option {name!r}{hint}; it accepts "
                            f"{', '.join(accepted)}")


def check_executor(executor: object) -> concurrent.futures.Executor | None:
    """Return ``executor`` if it is None or a :class:`concurrent.futures.Executor`."""
    if executor is not None and not isinstance(executor, concurrent.futures.Executor):
        raise TypeError(
            "executor must be a concurrent.futures.Executor (e.g. ThreadPoolExecutor or "
            f"distributed.Client(...).get_executor()), got {type(executor).__name__}"
        )
    return executor


def as_float_vector(value: object, name: str) -> np.ndarray:
    """:func:`as_float_array`, checked to be a non-empty 1-d array."""
    arr = as_float_array(value, name)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-d array, got shape {arr.shape}")
    return arr


def as_axis_values(value: object, name: str,
                   check: Callable[[np.ndarray], str | None]) -> np.ndarray:
    """Values of a parameter that labels an axis: a scalar, or a 1-d array of distinct values.

    ``check(arr)`` returns None for acceptable values, or the requirement they miss, which
    completes "<name> must ...".
    """
    arr = as_float_array(value, name, allow_empty=False)
    if arr.ndim > 1:
        raise ValueError(f"{name} must be a scalar or a 1-d sequence of values, got shape {arr.shape}")
    if arr.ndim == 1 and np.unique(arr).size != arr.size:
        raise ValueError(f"{name} must not repeat a value (it labels a dimension), got {arr.tolist()}")
    problem = check(arr)
    if problem:
        raise ValueError(f"{name} must {problem}, got {arr.tolist()}")
    return arr
