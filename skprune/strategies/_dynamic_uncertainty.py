"""Dynamic-uncertainty pruning (He et al., 2023)."""

from numbers import Integral

from sklearn.utils._param_validation import Interval, StrOptions

from .._dynamics import dynamic_uncertainty, record_dynamics
from .._query import check_skorch_classifier
from ..base import DataPruner


class DynamicUncertaintyPruner(DataPruner):
    """Keep the samples whose predicted probability fluctuates most in training.

    A clone of ``estimator`` is trained on the data given to
    ``fit_resample`` over its full schedule (``max_epochs``), and every
    sample's predicted probability of its true class is recorded every
    epoch. A sample's *dynamic uncertainty* is the standard deviation of that
    probability over ``window`` consecutive epochs, averaged over all such
    windows. The most uncertain samples are kept first; samples learnt early
    and confidently are pruned first.

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
    window : int, default=10
        Epochs per window; at most the estimator's ``max_epochs``.
    record : {"train", "eval"}, default="train"
        Where the probabilities come from. ``"train"`` reads the training
        forward pass (train mode, before each optimizer step), which costs
        nothing extra. ``"eval"`` adds, after every epoch, a pass over the
        training data without gradients, in eval mode and without the
        training iterator's augmentation, as He et al. do.
    n_runs : int, default=1
        Independent query trainings (different initialisation and
        shuffling); their scores are averaged.
    random_state : int, RandomState instance or None, default=None
        Seeds the query trainings, the MetriQ model and tie breaks.
    memory : None, str, path or joblib.Memory, default=None
        Cache of each run's scores (and MetriQ recalls), so that changing
        ``density`` or ``quota`` does not retrain.

    Attributes
    ----------
    scores_ : ndarray of shape (n_samples,)
        Dynamic uncertainty, averaged over runs.
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
    ForgettingPruner : scores from forgetting events during training.
    skprune.callbacks.TrainingDynamicsRecorder : the callback that records
        the training dynamics.

    Notes
    -----
    Mislabelled samples stand out only if the network learns (memorises)
    them during its schedule: their probability then climbs from near 0
    while clean samples sit near 1. A network too small or trained too
    briefly to fit them keeps their probability steadily near 0, and they
    score *low*; :class:`ForgettingPruner` ranks them high either way.

    He, Yang, Huang and Zhao, "Large-scale Dataset Pruning with Dynamic
    Uncertainty", CVPR Workshops 2024 (arXiv 2306.05175).

    Examples
    --------
    >>> import torch
    >>> from sklearn.datasets import load_digits
    >>> from skorch import NeuralNetClassifier
    >>> from skprune import DynamicUncertaintyPruner
    >>> X, y = load_digits(return_X_y=True)
    >>> X = (X / 16).astype("float32")
    >>> net = NeuralNetClassifier(
    ...     torch.nn.Linear, module__in_features=64, module__out_features=10,
    ...     criterion=torch.nn.CrossEntropyLoss, lr=0.5, max_epochs=5,
    ...     train_split=None, verbose=0)
    >>> pruner = DynamicUncertaintyPruner(net, density=0.3, window=3,
    ...                                   random_state=0)
    >>> X_kept, y_kept = pruner.fit_resample(X, y)
    >>> X_kept.shape
    (539, 64)
    >>> pruner.scores_.shape
    (1797,)
    """

    _parameter_constraints = {
        **DataPruner._parameter_constraints,
        "window": [Interval(Integral, 2, None, closed="left")],
        "record": [StrOptions({"train", "eval"})],
        "n_runs": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self, estimator=None, *, density=0.5, quota=None, window=10, record="train",
        n_runs=1, random_state=None, memory=None,
    ):
        super().__init__(
            estimator, density=density, quota=quota, random_state=random_state, memory=memory
        )
        self.window = window
        self.record = record
        self.n_runs = n_runs

    def _score_run(self, X, y, seed):
        owner = type(self).__name__
        check_skorch_classifier(self.estimator, owner)
        # Fail before training rather than after the whole schedule.
        if self.window > self.estimator.max_epochs:
            raise ValueError(
                f"{owner}(window={self.window}) needs at least {self.window} epochs of "
                f"training, but the estimator trains for max_epochs="
                f"{self.estimator.max_epochs}. Lower window or raise max_epochs."
            )
        _, proba = record_dynamics(self.estimator, X, y, seed, owner=owner, record=self.record)
        return dynamic_uncertainty(proba, window=self.window)
