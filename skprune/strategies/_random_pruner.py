"""Random pruning."""

import numpy as np

from .._docstrings import pruner_docstring
from ..base import DataPruner


@pruner_docstring
class RandomPruner(DataPruner):
    """Keep a random subset, optionally with class quotas.

    Every sample gets a uniform random score, so ``quota=None`` is plain random
    pruning and any other quota is random pruning within each class, with the
    class counts chosen by the quota: the paper's *Random+MetriQ*
    (``quota="metriq"``) and *Random+StrategyQ* (``quota=StrategyQ(...)``). See
    the :ref:`User Guide <strategies>`.

    Parameters
    ----------
    estimator : classifier, default=None
        Only needed by ``quota="metriq"``, which trains a clone of it to
        measure class recall. Any scikit-learn classifier or skorch net.
    {density}
    {quota}
    {selection}
    {random_state}
    memory : None, str, path or joblib.Memory, default=None
        Cache for MetriQ recalls (random scores are not cached: drawing
        them is cheaper than looking them up).
    {n_jobs}
    {verbose}

    {scores_attribute}
        The random scores.
    {fitted_attributes}

    See Also
    --------
    MetriQ : quotas from validation error rates.
    StrategyQ : quotas copied from another pruner.

    Examples
    --------
    >>> from skprune import RandomPruner, make_pipeline
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.linear_model import LogisticRegression
    >>> X, y = load_digits(return_X_y=True)
    >>> pruner = RandomPruner(density=0.3, quota="proportional", random_state=0)
    >>> X_kept, y_kept = pruner.fit_resample(X, y)
    >>> X_kept.shape
    (539, 64)
    >>> pipe = make_pipeline(RandomPruner(density=0.3, random_state=0),
    ...                      LogisticRegression(max_iter=500)).fit(X, y)
    >>> pipe.score(X, y) > 0.9
    True
    """

    def _score_run(self, X, y, seed):
        return np.random.RandomState(seed).uniform(size=y.shape[0])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.pruner_tags.query_fraction = None
        tags.pruner_tags.requires_X = False
        tags.pruner_tags.cache_scores = False
        return tags
