"""Area-under-the-margin pruning (Pleiss et al., 2020)."""

from .._docstrings import pruner_docstring
from ..scores import area_under_margin
from ._base import TrainingDynamicsPruner


@pruner_docstring
class AUMPruner(TrainingDynamicsPruner):
    """Keep the samples with the smallest area under the margin.

    A clone of ``estimator`` is trained on the data given to ``fit_resample``
    over its full schedule, and every sample's *margin* is read from the
    training forward pass of every epoch: the logit of its assigned class minus
    the largest other logit. Its area under the margin (AUM) is the margin
    averaged over epochs. Mislabelled samples have negative AUM (the network
    keeps preferring their true class); hard ones small AUM; easy ones large
    AUM. The score is ``-AUM``, so that, as everywhere in skprune, higher =
    harder = kept first. See the :ref:`User Guide <aum>`.

    Parameters
    ----------
    {recorded_estimator}
    {selection_parameters}
    {n_runs}
    {run_parameters}

    {scores_attribute}
        ``-AUM``: the margin averaged over epochs, negated (so that mislabelled
        samples score highest), then averaged over runs.
    {fitted_attributes}

    See Also
    --------
    ForgettingPruner : forgetting events from the same kind of record.
    skprune.callbacks.TrainingDynamicsRecorder : the callback that records
        the margins (``margins=True``).

    Notes
    -----
    For a module that outputs probabilities, the margin is taken between
    log-probabilities, which equals the logit margin.

    Pleiss, Zhang, Elenberg and Weinberger, "Identifying Mislabeled Data
    using the Area Under the Margin Ranking", NeurIPS 2020.

    Examples
    --------
    {example_net}
    >>> from skprune import AUMPruner
    >>> pruner = AUMPruner(net, density=0.3, random_state=0).fit(X, y)
    >>> len(pruner.sample_indices_), pruner.run_scores_.shape
    (539, (1, 1797))
    """

    _records_margins = True

    def _score_record(self, recorder):
        return -area_under_margin(recorder.margin_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.pruner_tags.continuous_scores = True
        return tags
