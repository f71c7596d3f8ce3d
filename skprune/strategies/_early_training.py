"""Shared query training of the pruners that score with an early-trained network."""

from abc import abstractmethod
from numbers import Integral

import torch
from sklearn.utils._param_validation import Interval
from skorch.dataset import unpack_data
from skorch.utils import to_device

from .._query import (
    check_skorch_classifier,
    fit_query_net,
    make_query_net,
    net_inputs,
    net_targets,
    seeded,
)
from ..base import DataPruner
from ..gradients import _check_class_outputs, _check_labels, _forward, _per_sample_loss


class _EarlyTrainingPruner(DataPruner):
    """Base of GraNd and EL2N: score every sample with a briefly trained clone.

    A clone of ``estimator`` is initialized and trained for ``epochs``
    epochs on all the data (``train_split=None``), then every sample is
    scored in eval mode over the net's non-augmenting iterator
    (``iterator_valid``). Scores are averaged over ``n_runs`` independent
    initializations (by :class:`~skprune.base.DataPruner`). Subclasses only
    implement :meth:`_score_net`.
    """

    _parameter_constraints = {
        **DataPruner._parameter_constraints,
        "epochs": [Interval(Integral, 0, None, closed="left"), None],
        "n_runs": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self, estimator=None, *, density=0.5, quota=None, epochs=None, n_runs=5,
        random_state=None, memory=None,
    ):
        super().__init__(
            estimator, density=density, quota=quota, random_state=random_state, memory=memory
        )
        self.epochs = epochs
        self.n_runs = n_runs

    @abstractmethod
    def _score_net(self, net, kind, batches):
        """Scores from a query net.

        Parameters
        ----------
        net : skorch.NeuralNetClassifier
            The initialized (and, unless ``epochs=0``, trained) query net.
        kind : {"logits", "probabilities"}
            What its module outputs.
        batches : iterable of (inputs, targets)
            The data in order, without augmentation, on the net's device.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
        """

    def _score_run(self, X, y, seed):
        owner = type(self).__name__
        check_skorch_classifier(self.estimator, owner)
        X, target = net_inputs(X), net_targets(y)
        epochs = self._query_epochs()
        net = make_query_net(self.estimator, owner=owner)
        with seeded(seed):
            net.initialize()
        kind = self._output_kind(net)
        module = net.module_
        # Bad outputs or labels are reported before any training, rather than
        # as a torch indexing error (or a CUDA device-side assert) mid-epoch.
        # This first forward pass also creates the weights of lazy layers,
        # under the run's seed.
        training = module.training
        module.eval()
        with seeded(seed), torch.no_grad():
            inputs, batch_target = next(iter(_eval_batches(net, X, target)))
            output = _forward(module, inputs)
        module.train(training)
        _check_class_outputs(output, batch_target, kind)
        _check_labels(torch.tensor(target), output.shape[1])
        if epochs > 0:
            fit_query_net(net, X, target, seed, epochs=epochs)
        return self._score_net(net, kind, _eval_batches(net, X, target))

    def _query_epochs(self):
        if self.epochs is not None:
            return self.epochs
        # 10% of the estimator's schedule, rounded up, and at least one epoch.
        return max(1, -(-self.estimator.max_epochs // 10))

    def _output_kind(self, net):
        try:
            kind, _ = _per_sample_loss(net.criterion_)
        except ValueError:
            raise ValueError(
                f"{type(self).__name__} needs to know whether the network outputs "
                "probabilities or logits: use criterion=torch.nn.NLLLoss (skorch's "
                "default; the module outputs probabilities) or "
                "criterion=torch.nn.CrossEntropyLoss (the module outputs logits); got "
                f"{type(net.criterion_).__name__}."
            ) from None
        return kind


def _eval_batches(net, X, target):
    """``(inputs, targets)`` batches in order, on the net's device, without augmentation.

    The inputs come from the net's validation iterator (its non-augmenting
    path, never shuffled); the targets are the labels given to the pruner.
    """
    start = 0
    labels = torch.tensor(target, dtype=torch.int64)
    dataset = net.get_dataset(X, target)
    for batch in net.get_iterator(dataset, training=False):
        inputs, _ = unpack_data(batch)
        inputs = to_device(inputs, net.device)
        n = _batch_length(inputs)
        yield inputs, labels[start:start + n].to(_inputs_device(inputs))
        start += n


def _batch_length(inputs):
    if isinstance(inputs, dict):
        return len(next(iter(inputs.values())))
    if isinstance(inputs, (list, tuple)):
        return len(inputs[0])
    return len(inputs)


def _inputs_device(inputs):
    if isinstance(inputs, dict):
        inputs = next(iter(inputs.values()))
    elif isinstance(inputs, (list, tuple)):
        inputs = inputs[0]
    return inputs.device
