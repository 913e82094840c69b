r"""The errors and warnings flowscan raises on purpose.

Every error flowscan raises about its input or a fit is a `FlowscanError`, so one
`except FlowscanError` catches them all; each also derives from the builtin a Python
user would expect (`ValueError`, `FloatingPointError`), so `except ValueError` keeps
working. The command line prints them as one line and exits with code 2.

Example:
    >>> from flowscan.variables import Variable
    >>> try:
    ...     Variable("m", "GeV", 10.0, 1.0)
    ... except FlowscanError as e:
    ...     print(e)
    m: low=10.0 must be below high=1.0
"""

from __future__ import annotations

__all__ = [
    "DependencyError",
    "FitError",
    "FlowscanError",
    "FlowscanWarning",
    "InputError",
    "ModelFileError",
    "first_line",
]


class FlowscanError(Exception):
    r"""Base class of the errors flowscan raises on purpose."""


class InputError(FlowscanError, ValueError):
    r"""Unusable input: events, a data file, options, parameter values or yields."""


class ModelFileError(InputError):
    r"""A model file that cannot be used: unreadable, corrupt, of another version or
    kind, or a signal and background model that do not belong together."""


class FitError(FlowscanError, FloatingPointError):
    r"""The likelihood is not finite (or the mixture density not positive) where it was
    evaluated, or a fit found no finite minimum."""


class ExportError(FlowscanError):
    r"""A model that cannot be exported, or whose exported graph disagrees with it."""


class DependencyError(FlowscanError, ImportError):
    r"""An optional dependency is missing (`pip install 'flowscan[mc]'` for Pythia 8)."""


class FlowscanWarning(UserWarning):
    r"""Something the user should know about a result that is still computed: data beyond
    what a model was trained on, yields that do not add up to the number of events."""


def first_line(e: BaseException) -> str:
    r"""The first line of an exception's message (its type if it has none), for an error
    that quotes another library's."""
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__
