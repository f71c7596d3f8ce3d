"""Forgetting-event pruning (Toneva et al., 2019)."""

from numbers import Integral

from sklearn.utils._param_validation import Interval

from .._dynamics import forgetting_events, record_dynamics
from ..base import DataPruner


class ForgettingPruner(DataPruner):
    """Keep the samples a network forgets most often while it trains.

    A clone of ``estimator`` is trained on the data given to
    ``fit_resample`` over its full schedule (``max_epochs``), and every
    sample's classification (correct or not) is read from the training
    forward pass of every epoch, at almost no extra cost. A *forgetting
    event* is a transition from correct to misclassified between two
    consecutive presentations of a sample. Samples with many events, and
    samples never classified correctly (which score their number of
    presentations), are kept first; samples learnt once and never forgotten
    are pruned first.

    Read more in the :ref:`User Guide <strategies>`.

    Parameters
    ----------
    estimator : skorch.NeuralNetClassifier, default=None
        The query network. Its module must output probabilities with
        ``criterion=torch.nn.NLLLoss`` (skorch's default) or logits with
        ``criterion=torch.nn.CrossEntropyLoss``. It is cloned with
        ``train_split=None`` so that every sample is trained on and recorded;
        its batch size, shuffling, optimizer and callbacks are kept, but not
        ``iterator_train__drop_last`` (every sample is presented every epoch)
        and it may not set its own ``iterator_train__sampler``. It is never
        modified. With ``quota="metriq"`` it also measures class
        recall.
    density : float in (0, 1], default=0.5
        Fraction of samples kept: exactly ``round(density * n_samples)``.
    quota : {None, "proportional", "balanced", "metriq"}, dict or quota object, default=None
        How the kept budget is split across classes; see
        :class:`~skprune.base.DataPruner`.
    n_runs : int, default=1
        Independent query trainings (different initialisation and shuffling);
        their event counts are summed.
    random_state : int, RandomState instance or None, default=None
        Seeds the query trainings, the MetriQ model and tie breaks.
    memory : None, str, path or joblib.Memory, default=None
        Cache of each run's scores (and MetriQ recalls), so that changing
        ``density`` or ``quota`` does not retrain.

    Attributes
    ----------
    scores_ : ndarray of shape (n_samples,)
        Forgetting events summed over runs.
    sample_indices_ : ndarray of int
        Kept rows, in their original order.
    class_counts_ : dict
        Kept rows per class.
    class_densities_ : dict
        Kept fraction of every class.
    sampling_strategy_ : dict
        Same as ``class_counts_`` (imbalanced-learn's name).
    class_weights_ : dict
        Density weight of every class, when ``quota`` is not ``None``.
    class_recall_ : dict
        Validation recall of every class, with ``quota="metriq"``.
    n_features_in_ : int
        Number of features (second dimension) seen in ``fit_resample``.

    See Also
    --------
    DynamicUncertaintyPruner : scores from the variability of the true-class
        probability during training.
    skprune.callbacks.TrainingDynamicsRecorder : the callback that records
        the training dynamics.

    Notes
    -----
    Toneva, Sordoni, Tachet des Combes, Trischler, Bengio and Gordon, "An
    Empirical Study of Example Forgetting during Deep Neural Network
    Learning", ICLR 2019.

    Examples
    --------
    >>> import torch
    >>> from sklearn.datasets import load_digits
    >>> from skorch import NeuralNetClassifier
    >>> from skprune import ForgettingPruner
    >>> X, y = load_digits(return_X_y=True)
    >>> X = (X / 16).astype("float32")
    >>> net = NeuralNetClassifier(
    ...     torch.nn.Linear, module__in_features=64, module__out_features=10,
    ...     criterion=torch.nn.CrossEntropyLoss, lr=0.5, max_epochs=5,
    ...     train_split=None, verbose=0)
    >>> pruner = ForgettingPruner(net, density=0.3, quota="proportional",
    ...                           random_state=0)
    >>> X_kept, y_kept = pruner.fit_resample(X, y)
    >>> X_kept.shape
    (539, 64)
    >>> float(pruner.scores_.max()) <= 5
    True
    """

    _parameter_constraints = {
        **DataPruner._parameter_constraints,
        "n_runs": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self, estimator=None, *, density=0.5, quota=None, n_runs=1, random_state=None,
        memory=None,
    ):
        super().__init__(
            estimator, density=density, quota=quota, random_state=random_state, memory=memory
        )
        self.n_runs = n_runs

    def _score_run(self, X, y, seed):
        correct, _ = record_dynamics(
            self.estimator, X, y, seed, owner=type(self).__name__, record="train"
        )
        return forgetting_events(correct)

    def _combine_runs(self, run_scores):
        # Toneva et al. count events over all presentations, so runs add up.
        return run_scores.sum(axis=0)
