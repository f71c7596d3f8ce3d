"""What one row of ``results.jsonl`` holds: every field, its type and its range.

A row is what :func:`benchmarks._cells.run_cell` returns. Rows are checked
as they are read (and as they are written), against the registry's
protocols and strategies, so that a hand-edited or foreign file ends the run
with a message naming the line and the field; a value is never coerced (a
seed ``"1"`` is not seed 1) and a row is never dropped from a table.
"""

import math
import numbers

from ._registry import NO_STRATEGY, PROTOCOLS, REFERENCES, STRATEGIES, method_label

__all__ = ["RowError", "check_row"]

#: Every row's cell, in the order they are checked.
CELL_FIELDS = ("protocol", "strategy", "density", "seed")
#: Fields of rows of data with groups: all of them, or none.
GROUP_FIELDS = ("validation_group_recall", "worst_group_accuracy", "group_accuracy_gap",
                "mean_group_accuracy", "group_recall", "group_counts")

_MISSING = object()


class RowError(ValueError):
    """A row field that is not what the benchmark writes (made by :meth:`about`).

    Attributes
    ----------
    field : str
    """

    field = None

    @classmethod
    def about(cls, field, problem, value=_MISSING):
        """The error for ``field``: what it must be (``problem``), and the ``value`` found.

        Parameters
        ----------
        field : str
        problem : str
            What it must be, e.g. ``"must be a number in [0, 1]"``.
        value : object, optional
            The value found.

        Returns
        -------
        RowError
        """
        got = "" if value is _MISSING else f" (got {_short_repr(value)})"
        error = cls(f"field {field!r} {problem}{got}")
        error.field = field
        return error


def check_row(row, strategies=()):
    """Raise :class:`RowError` for the first field of ``row`` that is not valid.

    Parameters
    ----------
    row : dict
        One parsed line of ``results.jsonl``.
    strategies : iterable of str, default=()
        The run's strategies, for strategies of the user's own
        (``module:Class``) beside the registry's.

    Raises
    ------
    RowError
    """
    for name in CELL_FIELDS:
        if name not in row:
            raise RowError.about(name, "is missing")
    protocol = row["protocol"]
    known = [*PROTOCOLS, *REFERENCES]
    if not isinstance(protocol, str) or protocol not in known:
        raise RowError.about("protocol", f"must be one of {', '.join(map(repr, known))}", protocol)
    _check_strategy(protocol, row["strategy"], strategies)
    density = row["density"]
    if not _is_number(density) or not 0 < density <= 1:
        raise RowError.about("density", "must be a number in (0, 1]", density)
    if protocol in REFERENCES and density != 1:
        raise RowError.about("density", f"must be 1 in a {protocol!r} row", density)
    seed = row["seed"]
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise RowError.about("seed", "must be a non-negative integer", seed)

    fields = dict(_FIELDS)
    grouped = [name for name in GROUP_FIELDS if name in row]
    if grouped or (protocol in PROTOCOLS and PROTOCOLS[protocol].uses_groups):
        fields.update(_GROUP_FIELD_CHECKS)
    for name in sorted(set(row) - set(fields) - set(CELL_FIELDS)):
        raise RowError.about(name, "is not a field of a result row")
    for name, check in fields.items():
        if name not in row:
            raise RowError.about(name, "is missing")
        check(name, row[name])

    label = method_label(protocol, row["strategy"])
    if row["method"] != label:
        raise RowError.about("method", f"must be {label!r} for this protocol and strategy",
                       row["method"])
    if set(row["class_counts"]) != set(row["class_recall"]):
        raise RowError.about("class_counts", "must name the classes of class_recall",
                       sorted(row["class_counts"]))
    if row["n_classes"] != len(row["class_recall"]):
        raise RowError.about("n_classes", f"must be the {len(row['class_recall'])} classes of "
                       "class_recall", row["n_classes"])
    if row["n_kept"] != sum(row["class_counts"].values()):
        raise RowError.about("n_kept", "must be the sum of class_counts", row["n_kept"])


def _check_strategy(protocol, strategy, own):
    if not isinstance(strategy, str):
        raise RowError.about("strategy", "must be a strategy name", strategy)
    takes_one = protocol in PROTOCOLS and PROTOCOLS[protocol].uses_strategy
    if not takes_one:
        if strategy != NO_STRATEGY:
            raise RowError.about("strategy", f"must be {NO_STRATEGY!r} in a {protocol!r} row",
                           strategy)
        return
    known = [name for name in STRATEGIES if name != "random"]
    known += [name for name in own if name not in STRATEGIES]
    if strategy not in known:
        # Random scores run as the protocol's random_equivalent, never as a strategy.
        raise RowError.about("strategy", f"must be one of {', '.join(map(repr, known))} in a "
                       f"{protocol!r} row", strategy)


def _is_number(value):
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and math.isfinite(value))


def _fraction(name, value):
    if not _is_number(value) or not 0 <= value <= 1:
        raise RowError.about(name, "must be a number in [0, 1]", value)


def _count(name, value):
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise RowError.about(name, "must be a non-negative integer", value)


def _positive_count(name, value):
    _count(name, value)
    if value == 0:
        raise RowError.about(name, "must be a positive integer", value)


def _seconds(name, value):
    if not _is_number(value) or value < 0:
        raise RowError.about(name, "must be a non-negative number of seconds", value)


def _text(name, value):
    if not isinstance(value, str) or not value:
        raise RowError.about(name, "must be a non-empty string", value)


def _mapping(check, what):
    def check_mapping(name, value):
        if not isinstance(value, dict) or not value:
            raise RowError.about(name, f"must be an object of name -> {what}", value)
        for key, item in value.items():
            try:
                check(name, item)
            except RowError:
                raise RowError.about(name, f"must map every name to {what}; {key!r} maps to "
                               f"{_short_repr(item)}") from None
    return check_mapping


def _optional(check):
    def check_optional(name, value):
        if value is not None:
            check(name, value)
    return check_optional


_recalls = _mapping(_fraction, "a number in [0, 1]")
_counts = _mapping(_count, "a non-negative integer")

_FIELDS = {
    "method": _text,
    "accuracy": _fraction,
    "worst_class_recall": _fraction,
    "recall_gap": _fraction,
    "recall_std": _fraction,
    "mean_class_recall": _fraction,
    "class_recall": _recalls,
    "class_counts": _counts,
    "validation_class_recall": _optional(_recalls),
    "n_kept": _positive_count,
    "n_train": _positive_count,
    "n_eval": _positive_count,
    "n_classes": _positive_count,
    "epochs": _positive_count,
    "fit_seconds": _seconds,
    "config": _text,
}

_GROUP_FIELD_CHECKS = {
    "validation_group_recall": _optional(_recalls),
    "worst_group_accuracy": _fraction,
    "group_accuracy_gap": _fraction,
    "mean_group_accuracy": _fraction,
    "group_recall": _recalls,
    "group_counts": _counts,
}


def _short_repr(value, limit=60):
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."
