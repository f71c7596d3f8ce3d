"""Area-under-the-margin pruning (Pleiss et al., 2020)."""

from .._docstrings import pruner_docstring
from ..scores import area_under_margin
from ._base import TrainingDynamicsPruner


@pruner_docstring
class AUMPruner(TrainingDynamicsPruner):
    """Keep the samples with the smallest area under the margin.

    A clone of ``estimator`` is trained on the data given to
    ``fit_resample`` over its full schedule, and every sample's *margin* is
    read from the training forward pass of every epoch: the logit of its
    assigned class minus the largest other logit. Its area under the margin
    (AUM) is the margin averaged over epochs. Mislabelled samples have
    negative AUM (the network keeps preferring their true class); hard ones
    small AUM; easy ones large AUM. The score is ``-AUM``, so that, as
    everywhere in skprune, higher = harder = kept first.

    Read more in the :ref:`User Guide <strategies>`.

    Parameters
    ----------
    {query_estimator}
        Its batch size and shuffling are kept, but not
        ``iterator_train__drop_last`` (every sample is presented every
        epoch), and it may not set its own ``iterator_train__sampler``.
    {density}
    {quota}
    {selection}
    n_runs : int, default=1
        Independent query trainings; their scores are averaged.
    {random_state}
    {memory}
    {n_jobs}
    {verbose}

    Attributes
    ----------
    scores_ : ndarray of shape (n_samples,)
        Negated area under the margin, averaged over runs.
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
    >>> import torch
    >>> from sklearn.datasets import load_digits
    >>> from skorch import NeuralNetClassifier
    >>> from skprune import AUMPruner
    >>> X, y = load_digits(return_X_y=True)
    >>> X = (X / 16).astype("float32")
    >>> net = NeuralNetClassifier(
    ...     torch.nn.Linear, module__in_features=64, module__out_features=10,
    ...     criterion=torch.nn.CrossEntropyLoss, lr=0.5, max_epochs=4,
    ...     train_split=None, verbose=0)
    >>> pruner = AUMPruner(net, density=0.3, random_state=0)
    >>> X_kept, y_kept = pruner.fit_resample(X, y)
    >>> X_kept.shape
    (539, 64)
    """

    _records_margins = True

    def _score_record(self, recorder):
        return -area_under_margin(recorder.margin_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.pruner_tags.continuous_scores = True
        return tags
