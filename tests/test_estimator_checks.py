"""scikit-learn's and imbalanced-learn's estimator checks on every pruner."""

from imblearn.utils.estimator_checks import parametrize_with_checks as imblearn_checks
from sklearn.linear_model import LogisticRegression
from sklearn.utils.estimator_checks import parametrize_with_checks as sklearn_checks

from skprune import RandomPruner

PRUNERS = [
    RandomPruner(random_state=0),
    RandomPruner(density=0.8, quota="proportional", random_state=0),
    RandomPruner(LogisticRegression(), density=0.7, quota="metriq", random_state=0),
]


@sklearn_checks(PRUNERS)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@imblearn_checks(PRUNERS)
def test_imblearn_compatible(estimator, check):
    check(estimator)
