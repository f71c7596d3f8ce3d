"""The guarantees every pruner keeps, as checks to run on a pruner of your own.

In the manner of scikit-learn's and imbalanced-learn's ``estimator_checks``:
:func:`check_pruner` runs every check on one pruner, and
:func:`parametrize_with_checks` turns pruners into pytest test cases (run it
beside scikit-learn's and imbalanced-learn's own ``parametrize_with_checks``,
which check the estimator interface). Each check fits clones of the pruner,
with integer random states, on small data, and raises an ``AssertionError``
that names the guarantee it broke:

- :func:`check_kept_count`: exactly ``round(density * n_samples)`` rows kept;
- :func:`check_every_class_kept`: at least one row of every class, even at
  the smallest density;
- :func:`check_sample_indices`: ``sample_indices_`` sorted, unique, and the
  rows returned;
- :func:`check_random_states_untouched`: the global torch, numpy and Python
  random states as they were, on a computed and on a cached fit;
- :func:`check_scores_cached`: a second fit with another density reads the
  scores from the cache instead of scoring again;
- :func:`check_scores_validated`: scores that are not one finite number per
  row are refused before selection.

The default data has three classes of 40, 25 and 15 rows and four float32
features; pass ``X, y`` where a pruner's estimator needs other inputs.
"""

import functools
import random
import warnings
from collections import Counter

import numpy as np
import torch
from sklearn.base import clone
from sklearn.utils import get_tags
from sklearn.utils.validation import _num_samples

from .._docstrings import Substitution
from ..base import smallest_density

__all__ = [
    "check_every_class_kept",
    "check_kept_count",
    "check_pruner",
    "check_random_states_untouched",
    "check_sample_indices",
    "check_scores_cached",
    "check_scores_validated",
    "parametrize_with_checks",
]


#: Fills in the parameters every check takes.
_check_docstring = Substitution(check_parameters="""\
Parameters
----------
name : str
    The pruner's name, for messages.
pruner_orig : DataPruner
    The pruner to check; it is cloned, never fitted itself.
X, y : array-like, default=None
    Data to prune, as in :func:`check_pruner`.""")


def check_pruner(pruner, X=None, y=None):
    """Run every check of this module on ``pruner``.

    Parameters
    ----------
    pruner : DataPruner
        The pruner to check; it is cloned, never fitted itself.
    X, y : array-like, default=None
        Data to prune; ``None``: three imbalanced classes of four features.

    Raises
    ------
    AssertionError
        From the first check that fails.

    See Also
    --------
    parametrize_with_checks : the same checks as pytest test cases.

    Examples
    --------
    >>> from skprune import RandomPruner
    >>> from skprune.utils.estimator_checks import check_pruner
    >>> check_pruner(RandomPruner(quota="proportional"))
    """
    for check in _checks():
        check(type(pruner).__name__, pruner, X, y)


def parametrize_with_checks(pruners, *, X=None, y=None):
    """A pytest decorator running every check on every pruner, one test each.

    The decorated test takes ``pruner`` and ``check`` and calls
    ``check(pruner)``.

    Parameters
    ----------
    pruners : list of DataPruner
    X, y : array-like, default=None
        Data to prune, as in :func:`check_pruner`.

    Returns
    -------
    decorator : pytest.mark.parametrize
        Test ids are ``<class name>-<check name>`` (numbered when a class
        appears more than once).

    Examples
    --------
    >>> from skprune import RandomPruner
    >>> from skprune.utils.estimator_checks import parametrize_with_checks
    >>> @parametrize_with_checks([RandomPruner(quota="balanced")])
    ... def test_my_pruner(pruner, check):
    ...     check(pruner)
    """
    import pytest

    cases, ids, seen = [], [], Counter()
    for pruner in pruners:
        name = type(pruner).__name__
        for check in _checks():
            cases.append((pruner, functools.partial(check, name, X=X, y=y)))
            test_id = f"{name}-{check.__name__}"
            seen[test_id] += 1
            ids.append(test_id if seen[test_id] == 1 else f"{test_id}-{seen[test_id]}")
    return pytest.mark.parametrize("pruner, check", cases, ids=ids)


@_check_docstring
def check_kept_count(name, pruner_orig, X=None, y=None):
    """Exactly ``round(density * n_samples)`` rows are kept, at several densities.

    {check_parameters}
    """
    X, y = _data(X, y)
    n_samples = _num_samples(y)
    for density in (0.25, 0.5, 1.0):
        pruner = _clone(pruner_orig, density=density)
        X_kept, y_kept = pruner.fit_resample(X, y)
        expected = round(density * n_samples)
        kept = {"sample_indices_": len(pruner.sample_indices_), "X_kept": _num_samples(X_kept),
                "y_kept": _num_samples(y_kept),
                "sum(class_counts_)": sum(pruner.class_counts_.values())}
        wrong = {what: count for what, count in kept.items() if count != expected}
        assert not wrong, (
            f"{name} at density={density} must keep round({density} * {n_samples}) = "
            f"{expected} rows; kept {wrong}."
        )
        assert np.shape(pruner.scores_) == (n_samples,), (
            f"{name}.scores_ must have shape ({n_samples},); got {np.shape(pruner.scores_)}."
        )


@_check_docstring
def check_every_class_kept(name, pruner_orig, X=None, y=None):
    """Every class keeps at least one row, at the smallest density, with and without quota.

    {check_parameters}
    """
    X, y = _data(X, y)
    classes = np.unique(y)
    density = float(smallest_density(classes.size, _num_samples(y)))
    for quota in [pruner_orig.quota] + ([] if pruner_orig.quota is None else [None]):
        pruner = _clone(pruner_orig, density=density, quota=quota)
        _, y_kept = pruner.fit_resample(X, y)
        lost = np.setdiff1d(classes, np.asarray(y_kept)).tolist()
        assert not lost, (
            f"{name}(quota={quota!r}) at density={density} keeps no row of classes {lost}; "
            "every class must keep at least one."
        )


@_check_docstring
def check_sample_indices(name, pruner_orig, X=None, y=None):
    """``sample_indices_`` are sorted, unique row positions, and the rows returned are theirs.

    {check_parameters}
    """
    X, y = _data(X, y)
    pruner = _clone(pruner_orig, density=0.5)
    X_kept, y_kept = pruner.fit_resample(X, y)
    indices = np.asarray(pruner.sample_indices_)
    assert indices.dtype.kind in "iu", f"{name}.sample_indices_ must be integers."
    assert np.all(np.diff(indices) > 0), (
        f"{name}.sample_indices_ must be strictly increasing (the kept rows in their "
        "original order)."
    )
    assert indices.size == 0 or (indices[0] >= 0 and indices[-1] < _num_samples(y)), (
        f"{name}.sample_indices_ must be row positions of the data."
    )
    np.testing.assert_array_equal(np.asarray(y_kept), np.asarray(y)[indices],
                                  err_msg=f"{name} must return the labels of sample_indices_")
    if isinstance(X, np.ndarray):
        np.testing.assert_array_equal(X_kept, X[indices],
                                      err_msg=f"{name} must return the rows of sample_indices_")


@_check_docstring
def check_random_states_untouched(name, pruner_orig, X=None, y=None):
    """A fit leaves the global torch, numpy and Python random states as it found them.

    Checked on a fit that computes the scores and on one that reads them
    from the cache.

    {check_parameters}
    """
    X, y = _data(X, y)
    for fit in ("computing", "cached"):
        before = _global_states()
        _clone(pruner_orig, random_state=1).fit(X, y)
        changed = [what for what, state in _global_states().items()
                   if not _same_state(state, before[what])]
        assert not changed, (
            f"A {fit} fit of {name} changed the global {' and '.join(changed)} random "
            "state; draw from generators seeded by the run's seed (np.random.RandomState, "
            "torch.Generator) or restore the global states."
        )


@_check_docstring
def check_scores_cached(name, pruner_orig, X=None, y=None):
    """A fit with another density reads the scores from the cache, and they are equal.

    Skipped for pruners whose ``cache_scores`` tag is off (scores cheaper to
    recompute than to look up).

    {check_parameters}
    """
    if not get_tags(pruner_orig).pruner_tags.cache_scores:
        return
    X, y = _data(X, y)
    first = _clone(pruner_orig, density=0.5, random_state=2).fit(X, y)
    second = _clone(pruner_orig, density=0.3, random_state=2)

    def recompute(X, y, seed):
        raise AssertionError(
            f"{name} scored the data again after a fit with the same data, scoring "
            "parameters and random_state: its scores must come from the cache (define the "
            "class in a file, so that its code can be keyed)."
        )

    second._score_run = recompute
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        second.fit(X, y)
    np.testing.assert_array_equal(second.scores_, first.scores_,
                                  err_msg=f"{name}'s cached scores differ from the computed")


@_check_docstring
def check_scores_validated(name, pruner_orig, X=None, y=None):
    """Scores that are not one finite real number per row raise a ``ValueError``.

    {check_parameters}
    """
    X, y = _data(X, y)
    n_samples = _num_samples(y)
    bad_scores = {
        "NaN": np.full(n_samples, np.nan),
        "too short": np.zeros(n_samples - 1),
        "2-D": np.zeros((n_samples, 2)),
    }
    for what, scores in bad_scores.items():
        # A RandomState (not an int) seed: nothing is read from the cache.
        pruner = _clone(pruner_orig, random_state=np.random.RandomState(0))
        pruner._score_run = lambda X, y, seed, scores=scores: scores
        try:
            pruner.fit(X, y)
        except ValueError as exc:
            assert "scores" in str(exc), (
                f"{name}'s error for {what} scores must say that the scores are wrong; "
                f"got: {exc}"
            )
        else:
            raise AssertionError(f"{name} accepted {what} scores; it must raise a ValueError.")


def _checks():
    return (check_kept_count, check_every_class_kept, check_sample_indices,
            check_random_states_untouched, check_scores_cached, check_scores_validated)


def _clone(pruner, **params):
    params.setdefault("random_state", 0)
    return clone(pruner).set_params(n_jobs=None, verbose=0, **params)


def _data(X, y):
    if X is not None or y is not None:
        return X, y
    rng = np.random.RandomState(0)
    y = np.repeat([0, 1, 2], [40, 25, 15])
    X = (rng.normal(size=(y.size, 4)) + y[:, None]).astype(np.float32)
    return X, y


def _global_states():
    states = {"Python": random.getstate(), "numpy": np.random.get_state(),
              "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["CUDA"] = torch.cuda.get_rng_state_all()
    return states


def _same_state(state, other):
    if isinstance(state, torch.Tensor):
        return torch.equal(state, other)
    if isinstance(state, (list, tuple)):
        return len(state) == len(other) and all(map(_same_state, state, other))
    if isinstance(state, np.ndarray):
        return np.array_equal(state, other)
    return state == other
