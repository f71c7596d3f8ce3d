"""Estimator checks on every pruner and quota: scikit-learn's, imbalanced-learn's, skprune's.

Pruners are discovered from ``skprune.__all__`` and quotas from
``skprune.quotas.__all__``: every pruner runs the checks with its default
quota, and every quota runs them inside a ``RandomPruner`` (cheap scores,
so the checks exercise the quota). skprune's own checks
(:mod:`skprune.utils.estimator_checks`) hold the pruner guarantees: exact
kept counts, a row of every class, sorted ``sample_indices_``, untouched
global random states, cached and validated scores. A new pruner or quota
is found on its own: a pruner is built with a tiny network as its
``estimator`` unless ``PRUNER_ARGS`` below says otherwise, and a quota needs
its constructor arguments in ``QUOTA_ARGS`` (a test fails until it has them).
"""

import inspect

import numpy as np
import pytest
from conftest import TinyMLP, make_tiny_net, stable_ids
from imblearn.utils.estimator_checks import parametrize_with_checks as imblearn_checks
from sklearn.linear_model import LogisticRegression
from sklearn.utils.estimator_checks import parametrize_with_checks as sklearn_checks

import skprune
from skprune import DataPruner, quotas
from skprune.utils.estimator_checks import parametrize_with_checks as skprune_checks


class AnyDtypeMLP(TinyMLP):
    """TinyMLP on any numeric input, of any scale.

    The checks fit on integer arrays and on features in the hundreds, on
    which plain SGD diverges (and the query monitor rightly says so).
    """

    def forward(self, X):
        X = X.float().flatten(1)
        return super().forward(X / (1.0 + X.abs().amax(dim=1, keepdim=True)))


def tiny_net(**params):
    return make_tiny_net(**{"module": AnyDtypeMLP, "max_epochs": 2, "batch_size": 16, **params})


def row_sums(X, y):
    """Precomputed-score stand-in: any numeric input, dense or sparse."""
    return np.asarray(X.sum(axis=1), dtype=float).ravel()


pytestmark = pytest.mark.filterwarnings(
    "ignore::skprune.exceptions.DegenerateTrainingWarning",
    "ignore::skprune.exceptions.StarvedGroupWarning",
)

#: Constructor arguments of the pruners that take other arguments than a tiny
#: network as ``estimator`` (the default: a new strategy needs no entry).
PRUNER_ARGS = {
    "RandomPruner": {},
    "ScorePruner": dict(scores=row_sums),
    "EL2NPruner": dict(estimator=tiny_net(), epochs=1, n_runs=1),
    "GraNdPruner": dict(estimator=tiny_net(), epochs=1, n_runs=1),
    "DynamicUncertaintyPruner": dict(estimator=tiny_net(max_epochs=3), window=2),
    "UncertaintyPruner": dict(estimator=tiny_net(), measure="margin"),
}
QUOTA_ARGS = {
    "ProportionalQuota": {},
    "BalancedQuota": {},
    "SUBG": {},
    "MetriQ": dict(estimator=LogisticRegression(max_iter=200)),
    "StrategyQ": dict(pruner=skprune.EL2NPruner(tiny_net(), epochs=1, n_runs=1)),
}
#: Quotas whose parameters only make sense for one data set.
DATA_SPECIFIC_QUOTAS = {"GivenWeights"}


def public(module, base):
    return sorted(
        name for name in module.__all__
        if inspect.isclass(getattr(module, name))
        and issubclass(getattr(module, name), base)
        and not inspect.isabstract(getattr(module, name))
    )


PRUNERS = public(skprune, DataPruner)
QUOTAS = public(quotas, quotas.BaseQuota)


def pruner_args(name):
    return PRUNER_ARGS.get(name, {"estimator": tiny_net()})


def test_every_public_pruner_and_quota_is_checked():
    assert set(PRUNER_ARGS) <= set(PRUNERS), "entries of pruners that are not public"
    assert {"ForgettingPruner", "AUMPruner"} <= set(PRUNERS)
    assert set(QUOTAS) - DATA_SPECIFIC_QUOTAS == set(QUOTA_ARGS)


def instances():
    checked = [getattr(skprune, name)(**pruner_args(name), random_state=0) for name in PRUNERS]
    checked += [
        skprune.RandomPruner(density=0.7, quota=getattr(quotas, name)(**QUOTA_ARGS[name]),
                             random_state=0)
        for name in QUOTAS if name not in DATA_SPECIFIC_QUOTAS
    ]
    # MetriQ through a skorch network, and the string quotas.
    checked += [
        skprune.RandomPruner(tiny_net(), density=0.7, quota="metriq", random_state=0),
        skprune.ForgettingPruner(tiny_net(), density=0.8, quota="proportional",
                                 selection="easiest", random_state=0),
        skprune.EL2NPruner(tiny_net(), epochs=1, n_runs=1, density=0.6, quota="balanced",
                           selection="coverage", random_state=0),
        skprune.CoreSetPruner(tiny_net(), scope="class", density=0.7, quota="proportional",
                              selection="offset", random_state=0),
    ]
    return checked


@stable_ids(sklearn_checks(instances()))
def test_sklearn_compatible(estimator, check):
    check(estimator)


@stable_ids(imblearn_checks(instances()))
def test_imblearn_compatible(estimator, check):
    check(estimator)


@skprune_checks(instances())
def test_pruner_guarantees(pruner, check):
    check(pruner)


@pytest.mark.parametrize("name", PRUNERS)
def test_pruner_parameters_are_documented_and_validated(name):
    pruner_class = getattr(skprune, name)
    parameters = set(inspect.signature(pruner_class).parameters)
    assert parameters == set(pruner_class._parameter_constraints)
