"""Pruning by scores computed elsewhere."""

import numpy as np

from .._docstrings import pruner_docstring
from ..base import DataPruner


@pruner_docstring
class ScorePruner(DataPruner):
    """Keep the highest of scores you bring: an array, or a function of the data.

    Scores from another tool, a paper's release or your own model plug into
    skprune's quotas and selection rules. As everywhere in skprune, higher =
    harder = kept first (negate scores that mean the opposite, or use
    ``selection="easiest"``). Scores are checked like computed ones: one finite
    number per row. See the :ref:`User Guide <strategies>`.

    Parameters
    ----------
    scores : array-like of shape (n_samples,) or callable, default=None
        The scores of the rows given to ``fit_resample``, in their order,
        or a function ``scores(X, y) -> array of shape (n_samples,)``
        called on them (use a function inside cross-validation, where
        every fold gets other rows).
    estimator : classifier, default=None
        Only needed by ``quota="metriq"``.
    {density}
    {quota}
    {selection}
    random_state : int, RandomState instance or None, default=None
        Seeds the tie breaks between equal scores and, with
        ``quota="metriq"``, MetriQ's networks (the scores themselves are
        given, never drawn). Only an integer seed makes MetriQ's recalls
        cacheable. A fit leaves the global random states as it found them;
        ``None`` draws the fit's seed from numpy's global generator.
    memory : None, str, path or joblib.Memory, default=None
        Cache for MetriQ recalls (given scores are never cached).
    n_jobs : int or None, default=None
        Kept for the interface every pruner shares; a ``ScorePruner`` trains
        no query networks, so it changes nothing (MetriQ's networks train
        one after another).
    verbose : int, default=0
        0: silent; 1: a progress bar over MetriQ's networks, when it trains
        any.

    {scores_attribute}
        The scores, as floats.
    {fitted_attributes}

    See Also
    --------
    RandomPruner : uniform random scores.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skprune import ScorePruner
    >>> X, y = load_digits(return_X_y=True)
    >>> brightness = ScorePruner(lambda X, y: X.sum(axis=1), density=0.5,
    ...                          quota="proportional", random_state=0)
    >>> X_kept, _ = brightness.fit_resample(X, y)
    >>> bool(X_kept.sum(axis=1).mean() > X.sum(axis=1).mean())
    True
    """

    _parameter_constraints = {
        **DataPruner._parameter_constraints,
        "scores": ["array-like", callable, None],
    }

    def __init__(self, scores=None, estimator=None, *, density=0.5, quota=None,
                 selection="hardest", random_state=None, memory=None, n_jobs=None,
                 verbose=0):
        super().__init__(estimator, density=density, quota=quota, selection=selection,
                         random_state=random_state, memory=memory, n_jobs=n_jobs,
                         verbose=verbose)
        self.scores = scores

    def _score_run(self, X, y, seed):
        if self.scores is None:
            raise ValueError(
                "ScorePruner needs scores: pass an array with one score per row, or a "
                "function scores(X, y), as ScorePruner(scores=...)."
            )
        scores = self.scores(X, y) if callable(self.scores) else self.scores
        return np.asarray(scores)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.pruner_tags.query_fraction = None
        # Given scores: neither read from X, nor worth a cache lookup.
        tags.pruner_tags.requires_X = tags.pruner_tags.cache_scores = False
        return tags
