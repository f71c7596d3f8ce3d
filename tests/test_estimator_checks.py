"""scikit-learn's and imbalanced-learn's estimator checks on RandomPruner.

The strategy pruners run the same checks in their own test modules.
"""

from conftest import stable_ids
from imblearn.utils.estimator_checks import parametrize_with_checks as imblearn_checks
from sklearn.linear_model import LogisticRegression
from sklearn.utils.estimator_checks import parametrize_with_checks as sklearn_checks

from skprune import RandomPruner

PRUNERS = [
    RandomPruner(random_state=0),
    RandomPruner(density=0.8, quota="proportional", random_state=0),
    RandomPruner(LogisticRegression(), density=0.7, quota="metriq", random_state=0),
]


@stable_ids(sklearn_checks(PRUNERS))
def test_sklearn_compatible(estimator, check):
    check(estimator)


@stable_ids(imblearn_checks(PRUNERS))
def test_imblearn_compatible(estimator, check):
    check(estimator)
