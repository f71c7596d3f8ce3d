"""Docstring blocks shared by the pruners, filled in by :class:`Substitution`.

Parameters that every pruner has (``density``, ``quota``, ...) and the
fitted attributes they all set are described once here, so that the
descriptions cannot drift apart.
"""

import textwrap


class Substitution:
    """Decorator replacing ``{name}`` placeholders in a docstring by shared blocks.

    Only the given names are replaced (other braces, such as a ``{class:
    weight}`` dict in the text, are left alone), and a multi-line block is
    indented to the column of its placeholder.

    Parameters
    ----------
    **blocks : str
        Placeholder name -> text (dedented; its first line at column 0).
    """

    def __init__(self, **blocks):
        self.blocks = blocks

    def __call__(self, obj):
        doc = obj.__doc__
        for name, block in self.blocks.items():
            placeholder = "{" + name + "}"
            while placeholder in doc:
                start = doc.index(placeholder)
                column = start - (doc.rfind("\n", 0, start) + 1)
                text = textwrap.indent(textwrap.dedent(block).strip("\n"), " " * column)
                doc = doc[:start] + text[column:] + doc[start + len(placeholder):]
        obj.__doc__ = doc
        return obj


QUOTA_ATTRIBUTES = """\
weights_ : ndarray of shape (n_groups,)
    {weights}
group_labels_ : ndarray of shape (n_groups,)
    The groups (the classes, unless the pruner was given ``groups``)."""


def quota_attributes(weights):
    """A quota's ``weights_`` and ``group_labels_`` entries, ``weights_`` described as given."""
    return Substitution(quota_attributes=QUOTA_ATTRIBUTES.replace("{weights}", weights))


QUERY_ESTIMATOR = """\
estimator : skorch.NeuralNetClassifier, default=None
    The query network. Its module must output probabilities with
    ``criterion=torch.nn.NLLLoss`` (skorch's default) or logits with
    ``criterion=torch.nn.CrossEntropyLoss``. It is cloned with
    ``train_split=None``, so that every sample is trained on, and
    trained silently; its batch size, optimizer and callbacks are kept.
    It is never modified. With ``quota="metriq"`` it also measures class
    recall."""

DENSITY = """\
density : float in (0, 1], default=0.5
    Fraction of samples kept: exactly ``round(density * n_samples)``."""

QUOTA = """\
quota : {None, "proportional", "balanced", "subg", "metriq"}, dict or quota object, \
default=None
    How the kept budget is split across classes. ``None`` keeps the
    globally highest scores; ``"proportional"`` keeps the same fraction
    of every class; ``"balanced"`` the same count (``"subg"``,
    :class:`~skprune.quotas.SUBG`, is that rule as Idrissi et al.'s
    baseline, and says whether the smallest class allows it); ``"metriq"`` or
    :class:`~skprune.MetriQ` keeps fractions that grow with validation
    error rates; :class:`~skprune.StrategyQ` copies another pruner's class
    ratios; a dict ``{class: weight}`` gives density weights directly.
    Every class keeps at least one sample."""

SELECTION = """\
selection : {"hardest", "easiest", "offset", "coverage"} or selection rule, default="hardest"
    Which rows of each class are kept, given their scores:
    ``"hardest"`` keeps the highest scores, ``"easiest"`` the lowest,
    ``"offset"`` the lowest after passing over the easiest 10%, as
    ``data_diet`` counts its offset (:class:`~skprune.selection.OffsetWindow`),
    ``"coverage"`` samples every score range
    (:class:`~skprune.selection.CoverageCentric`); pass a rule object to set
    its parameters. Changing it reuses the cached scores."""

RANDOM_STATE = """\
random_state : int, RandomState instance or None, default=None
    Seeds the query networks, the quota and tie breaks. Only integer
    seeds make results cacheable. A fit leaves the global torch, numpy and
    Python random states as it found them, except that ``None`` draws the
    fit's seeds from numpy's global generator, as scikit-learn's estimators
    do (so ``np.random.seed`` reproduces it)."""

MEMORY = """\
memory : None, str, path or joblib.Memory, default=None
    Cache of each run's scores (and MetriQ recalls), so that changing
    ``density``, ``quota`` or ``selection`` does not retrain. ``None``
    caches within this process; a path (or a ``joblib.Memory``'s
    location) shares the cache across processes and runs."""

N_JOBS = """\
n_jobs : int or None, default=None
    Query trainings (``n_runs``) run at once, in joblib worker
    processes; ``None`` means 1, ``-1`` every core. With several CUDA
    devices visible and the estimator on CUDA, runs take the devices in
    turn. The scores equal the sequential ones."""

VERBOSE = """\
verbose : int, default=0
    0: silent; 1: a progress bar over the query runs, with every epoch's
    loss; 2: also the query networks' own per-epoch log. Otherwise a
    query network prints what its estimator's own ``verbose`` says."""

N_RUNS_MEAN = """\
n_runs : int, default=5
    Independent query networks (initialization and shuffling); their
    scores are averaged."""

N_RUNS = N_RUNS_MEAN.replace("default=5", "default=1")

EPOCHS_FULL = """\
epochs : int >= 0 or None, default=None
    Epochs of query training before scoring. ``None`` means the
    estimator's whole schedule; ``0`` scores with the initialized network."""

RECORDED_ESTIMATOR = QUERY_ESTIMATOR + """
    Where the training pass is recorded, its batch size and shuffling are
    kept, but not ``iterator_train__drop_last`` (every sample is presented
    every epoch), and it may not set its own ``iterator_train__sampler``."""

EXAMPLE_NET = """\
>>> import torch
>>> from sklearn.datasets import load_digits
>>> from skorch import NeuralNetClassifier
>>> X, y = load_digits(return_X_y=True)
>>> X = (X / 16).astype("float32")
>>> net = NeuralNetClassifier(
...     torch.nn.Linear, module__in_features=64, module__out_features=10,
...     criterion=torch.nn.CrossEntropyLoss, lr=0.5, max_epochs=4,
...     train_split=None, verbose=0)"""

FITTED_ATTRIBUTES = """\
run_scores_ : ndarray of shape (n_runs, n_samples)
    The scores of every run, before they are combined into ``scores_``.
sample_indices_ : ndarray of int
    Kept rows, in their original order.
class_counts_ : dict
    Kept rows per class.
class_densities_ : dict
    Kept fraction of every class.
sampling_strategy_ : dict
    Same as ``class_counts_`` (imbalanced-learn's name).
quota_ : quota object or None
    The fitted quota (``None`` with ``quota=None``); its ``weights_``
    are the classes' density weights.
class_weights_ : dict
    Density weight of every class, when ``quota`` is not ``None``.
class_recall_ : dict
    Validation recall of every class, with ``quota="metriq"``.
n_features_in_ : int
    Number of features (second dimension) seen in ``fit_resample``;
    absent for Dataset inputs."""

SCORES_ATTRIBUTE = """\
Attributes
----------
scores_ : ndarray of shape (n_samples,)"""

#: The blocks every pruner's docstring may use.
PRUNER_BLOCKS = {
    "query_estimator": QUERY_ESTIMATOR,
    "recorded_estimator": RECORDED_ESTIMATOR,
    "density": DENSITY,
    "quota": QUOTA,
    "selection": SELECTION,
    # density, quota and selection, which follow the estimator in every pruner
    "selection_parameters": "\n".join([DENSITY, QUOTA, SELECTION]),
    "random_state": RANDOM_STATE,
    "memory": MEMORY,
    "n_runs": N_RUNS,
    "epochs_full": EPOCHS_FULL,
    "n_runs_mean": N_RUNS_MEAN,
    "n_jobs": N_JOBS,
    "verbose": VERBOSE,
    # random_state, memory, n_jobs and verbose, the last parameters of every pruner
    "run_parameters": "\n".join([RANDOM_STATE, MEMORY, N_JOBS, VERBOSE]),
    # the Attributes heading and the first attribute; its description follows
    "scores_attribute": SCORES_ATTRIBUTE,
    "fitted_attributes": FITTED_ATTRIBUTES,
    # a network on scikit-learn's digits, `net`, and the data, `X, y`
    "example_net": EXAMPLE_NET,
}

#: Decorator filling in :data:`PRUNER_BLOCKS`.
pruner_docstring = Substitution(**PRUNER_BLOCKS)
