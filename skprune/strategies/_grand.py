"""GraNd pruning: gradient norms early in training (Paul et al., 2021)."""

import itertools

from sklearn.utils._param_validation import StrOptions

from .._docstrings import pruner_docstring
from .._query_training import eval_batches
from ..gradients._norms import _grad_norms_of_batches
from ..utils._modules import final_linear
from ._base import QueryNetPruner


@pruner_docstring
class GraNdPruner(QueryNetPruner):
    """Keep the samples with the largest loss-gradient norms early in training.

    A clone of ``estimator`` is trained for ``epochs`` epochs on the data given
    to ``fit_resample`` (``epochs=0`` scores at initialization, as in the
    original GraNd). Every sample then scores the L2 norm of the gradient of
    its cross-entropy loss with respect to all the network's trainable
    parameters, computed exactly in eval mode (batch norm on its running
    statistics) on un-augmented data by :func:`~skprune.per_sample_grad_norms`,
    at about the cost of one forward and backward pass. Scores are averaged
    over ``n_runs`` independent initializations. Samples with large norms
    (hard, atypical or mislabeled) are kept first. See the :ref:`User Guide
    <grand>`.

    Parameters
    ----------
    {query_estimator}
    {selection_parameters}
    epochs : int >= 0 or None, default=None
        How long the query network trains before its gradients are taken:
        the first ``epochs`` of the estimator's full schedule. ``None`` means
        10% of the estimator's ``max_epochs``, rounded up (at least 1); ``0`` scores
        the freshly initialized network (the original GraNd).
    {n_runs_mean}
    layers : {"all", "last"}, default="all"
        ``"all"``: the norm over every trainable parameter. ``"last"``: only
        the parameters of the final ``torch.nn.Linear`` layer (the last one
        called in the forward pass), a cheap proxy (DeepCore's variant): its
        per-sample gradient is ``g h^T`` (and ``g`` for the bias), with ``h``
        the layer's input and ``g`` the loss gradient at its output (``p -
        onehot(y)`` for logits), so the score is ``|g| sqrt(|h|^2 + 1)``.
    {run_parameters}

    {scores_attribute}
        Gradient norms averaged over runs.
    {fitted_attributes}

    See Also
    --------
    EL2NPruner : the norm of the error vector, the same query training.
    per_sample_grad_norms : the exact per-sample gradient norms.

    Notes
    -----
    GraNd and EL2N come from one paper: Paul, Ganguli and Dziugaite, "Deep
    Learning on a Data Diet: Finding Important Examples Early in Training",
    NeurIPS 2021.

    Examples
    --------
    {example_net}
    >>> from skprune import GraNdPruner
    >>> pruner = GraNdPruner(net, density=0.3, n_runs=2, layers="last", random_state=0).fit(X, y)
    >>> bool(pruner.scores_[pruner.sample_indices_].mean() > pruner.scores_.mean())
    True
    """

    _parameter_constraints = {
        **QueryNetPruner._parameter_constraints,
        "layers": [StrOptions({"all", "last"})],
    }

    def __init__(self, estimator=None, *, density=0.5, quota=None, selection="hardest",
                 epochs=None, n_runs=5, layers="all", random_state=None, memory=None,
                 n_jobs=None, verbose=0):
        super().__init__(estimator, density=density, quota=quota, selection=selection,
                         epochs=epochs, n_runs=n_runs, random_state=random_state, memory=memory,
                         n_jobs=n_jobs, verbose=verbose)
        self.layers = layers

    def _score_net(self, net, kind, X, target):
        batches = eval_batches(net, X, target)
        module = net.module_
        parameters = None
        if self.layers == "last":
            batches = iter(batches)
            first = next(batches)
            final = final_linear(module, first[0], owner="GraNdPruner(layers='last')")
            parameters = [p for p in final.parameters(recurse=False) if p.requires_grad]
            batches = itertools.chain([first], batches)
        # The plain cross-entropy of the paper, whatever class weights or
        # label smoothing the net trains with.
        criterion = "cross_entropy" if kind == "logits" else "nll"
        return _grad_norms_of_batches(module, batches, criterion=criterion, parameters=parameters)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.pruner_tags.query_fraction = 0.1
        return tags
