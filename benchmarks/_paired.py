"""Paired differences over seeds: is a method better than Random, or than its strategy?

Every cell of a method is paired with the cell of its reference at the same
density and seed (same data split, same MetriQ validation set, same query
networks), and the difference is summarized by its mean, standard deviation,
number of seeds and a 95% confidence interval (Student's t). Pairing removes
what the seeds share, which the mean [min, max] tables cannot.
"""

import numpy as np
import pandas as pd
from scipy import stats

from ._registry import NO_STRATEGY, PROTOCOLS, REFERENCES

#: The references a method is compared with.
REFERENCES_OF_METHODS = ("Random", "Strategy")
_KEY = ["protocol", "strategy", "density", "seed"]


def paired_differences(rows, metric="worst_class_recall", against="Random", level=0.95):
    """The difference of ``metric`` between every method and a reference, per density.

    Parameters
    ----------
    rows : iterable of dict
        Rows of ``results.jsonl`` (every row needs ``protocol``,
        ``strategy``, ``method``, ``density``, ``seed`` and ``metric``).
    metric : str, default="worst_class_recall"
    against : {"Random", "Strategy"}, default="Random"
        ``"Random"``: every method against random pruning (protocol
        ``Random``). ``"Strategy"``: every method with a strategy against
        that strategy alone (protocol ``Strategy``), e.g. EL2N+MetriQ
        against EL2N.
    level : float, default=0.95
        Confidence level of the interval.

    Returns
    -------
    pandas.DataFrame
        ``method, protocol, strategy, density, n_seeds, mean, std, ci_low,
        ci_high``; the interval is ``NaN`` with a single seed.
    """
    if against not in REFERENCES_OF_METHODS:
        raise ValueError(f"against must be one of {REFERENCES_OF_METHODS}; got {against!r}.")
    cells = pd.DataFrame(list(rows))
    columns = ["method", "protocol", "strategy", "density", "n_seeds", "mean", "std",
               "ci_low", "ci_high"]
    if cells.empty:
        return pd.DataFrame(columns=columns)
    cells = cells[~cells["protocol"].isin(REFERENCES)]
    reference = cells[cells["protocol"] == against]
    if against == "Random":
        reference = reference[reference["strategy"] == NO_STRATEGY]
        candidates = cells[cells["protocol"] != "Random"]
        on = ["density", "seed"]
    else:
        candidates = cells[cells["protocol"].map(_compares_with_strategy)]
        on = ["strategy", "density", "seed"]
    pairs = candidates.merge(reference[on + [metric]], on=on, suffixes=("", "_reference"))
    pairs["difference"] = pairs[metric] - pairs[f"{metric}_reference"]
    records = []
    for (method, protocol, strategy, density), group in pairs.groupby(
            ["method", "protocol", "strategy", "density"], sort=False):
        records.append({"method": method, "protocol": protocol, "strategy": strategy,
                        "density": density, **summarize_differences(group["difference"],
                                                                     level)})
    return pd.DataFrame(records, columns=columns)


def summarize_differences(differences, level=0.95):
    """Mean, standard deviation, count and t confidence interval of paired differences."""
    values = np.asarray(differences, dtype=float)
    n = values.size
    mean = float(values.mean()) if n else np.nan
    std = float(values.std(ddof=1)) if n > 1 else np.nan
    if n > 1:
        half = stats.t.ppf(0.5 + level / 2, n - 1) * std / np.sqrt(n)
        low, high = mean - half, mean + half
    else:
        low = high = np.nan
    return {"n_seeds": n, "mean": mean, "std": std, "ci_low": low, "ci_high": high}


def _compares_with_strategy(protocol):
    entry = PROTOCOLS.get(protocol)
    return entry is not None and entry.uses_strategy and protocol != "Strategy"


def format_difference(record, digits=3):
    """``"+0.012 [-0.010, +0.034]"``: the mean difference and its interval."""
    text = f"{record['mean']:+.{digits}f}"
    if not np.isnan(record["ci_low"]):
        text += f" [{record['ci_low']:+.{digits}f}, {record['ci_high']:+.{digits}f}]"
    return text


def display_differences(differences, digits=3):
    """A method x density table of formatted paired differences."""
    if differences.empty:
        return pd.DataFrame()
    table = (
        differences.assign(entry=differences.apply(format_difference, axis=1, digits=digits))
        .pivot(index="method", columns="density", values="entry")
        .reindex(index=differences["method"].unique(),
                 columns=sorted(differences["density"].unique()))
        .fillna("")
    )
    table.columns = [repr(round(float(density), 6)) for density in table.columns]
    return table
