"""EL2N pruning: error norms early in training (Paul et al., 2021)."""

import numpy as np
import torch

from ..gradients import _check_class_outputs, _forward
from ._early_training import _EarlyTrainingPruner


class EL2NPruner(_EarlyTrainingPruner):
    """Keep the samples with the largest prediction errors early in training.

    A clone of ``estimator`` is trained for ``epochs`` epochs on the data
    given to ``fit_resample``; every sample then scores the L2 norm of its
    error vector, ``||softmax(f(x)) - onehot(y)||_2``, computed in eval mode
    on un-augmented data. Scores are averaged over ``n_runs`` independent
    initializations. Samples the early network gets badly wrong (hard,
    atypical or mislabeled) are kept first. For logits and the
    cross-entropy loss, the error vector is the loss gradient with respect
    to the logits, so EL2N is GraNd's cheaper cousin.

    Read more in the :ref:`User Guide <strategies>`.

    Parameters
    ----------
    estimator : skorch.NeuralNetClassifier, default=None
        The query network. Its module must output probabilities with
        ``criterion=torch.nn.NLLLoss`` (skorch's default; used as they are)
        or logits with ``criterion=torch.nn.CrossEntropyLoss`` (a softmax is
        applied). It is cloned with ``train_split=None`` so that every
        sample is trained on; its batch size, optimizer and callbacks are
        kept. It is never modified. With ``quota="metriq"`` it also
        measures class recall.
    density : float in (0, 1], default=0.5
        Fraction of samples kept: exactly ``round(density * n_samples)``.
    quota : {None, "proportional", "balanced", "metriq"}, dict or quota object, default=None
        How the kept budget is split across classes; see
        :class:`~skprune.base.DataPruner`.
    epochs : int >= 0 or None, default=None
        Epochs of query training before scoring. ``None`` means 10% of the
        estimator's ``max_epochs``, rounded up (at least 1); ``0`` scores
        the freshly initialized network.
    n_runs : int, default=5
        Independent query networks (initialization and shuffling); their
        scores are averaged.
    random_state : int, RandomState instance or None, default=None
        Seeds the query networks, the MetriQ model and tie breaks.
    memory : None, str, path or joblib.Memory, default=None
        Cache of each run's scores (and MetriQ recalls), so that changing
        ``density`` or ``quota`` does not retrain.

    Attributes
    ----------
    scores_ : ndarray of shape (n_samples,)
        Error norms averaged over runs, in ``[0, sqrt(2)]``.
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
    GraNdPruner : the norm of the full loss gradient, the same query training.

    Notes
    -----
    Paul, Ganguli and Dziugaite, "Deep Learning on a Data Diet: Finding
    Important Examples Early in Training", NeurIPS 2021.

    Examples
    --------
    >>> import torch
    >>> from sklearn.datasets import load_digits
    >>> from skorch import NeuralNetClassifier
    >>> from skprune import EL2NPruner
    >>> X, y = load_digits(return_X_y=True)
    >>> X = (X / 16).astype("float32")
    >>> net = NeuralNetClassifier(
    ...     torch.nn.Linear, module__in_features=64, module__out_features=10,
    ...     criterion=torch.nn.CrossEntropyLoss, lr=0.5, max_epochs=10,
    ...     train_split=None, verbose=0)
    >>> pruner = EL2NPruner(net, density=0.3, quota="proportional", n_runs=2,
    ...                     random_state=0)
    >>> X_kept, y_kept = pruner.fit_resample(X, y)
    >>> X_kept.shape
    (539, 64)
    >>> bool(0 <= pruner.scores_.min() and pruner.scores_.max() <= 2 ** 0.5)
    True
    """

    def _score_net(self, net, kind, batches):
        module = net.module_
        module.eval()
        scores = []
        with torch.no_grad():
            for inputs, target in batches:
                output = _forward(module, inputs)
                _check_class_outputs(output, target, kind)
                error = output.softmax(1) if kind == "logits" else output.clone()
                error[torch.arange(target.shape[0], device=error.device), target] -= 1
                scores.append(torch.linalg.vector_norm(error, dim=1).double().cpu())
        return torch.cat(scores).numpy() if scores else np.zeros(0)
