"""Pipelines that prune at fit time only.

scikit-learn's own ``Pipeline`` cannot change the number of samples;
imbalanced-learn's runs a sampler's ``fit_resample`` while fitting and skips
it when predicting or scoring, which is what pruning needs: test data is
never pruned. skprune's ``Pipeline`` is imbalanced-learn's, with one change:
without metadata routing, a step parameter such as ``randompruner__groups``
reaches the pruner's ``fit_resample`` (imbalanced-learn passes step
parameters to ``fit`` only, and a sampler never sees them). With
``correct_epochs=True`` it also trains a final skorch network for the
paper's epochs at the fraction of rows the pruners kept.
"""

import math

import numpy as np
from imblearn import pipeline as imblearn_pipeline
from sklearn.utils.metadata_routing import _routing_enabled
from sklearn.utils.validation import _num_samples

__all__ = ["Pipeline", "corrected_epochs", "make_pipeline"]


def corrected_epochs(epochs, density, rounding="round"):
    """Epochs of a network trained on a fraction ``density`` of the data.

    The paper (Vysogorets and Kempe) trains pruned runs for
    ``E * (0.5 + 0.5 f) / f`` epochs, so that their number of optimizer steps
    is halfway between the full run's and a run with the same number of
    epochs. The DRoP authors' code floors it (``rounding="floor"``); skprune
    rounds to the nearest.

    Parameters
    ----------
    epochs : int
        Epochs ``E`` of a training on all the data.
    density : float in (0, 1]
        Fraction ``f`` of the rows kept.
    rounding : {"round", "floor"}, default="round"

    Returns
    -------
    int
        At least 1.

    See Also
    --------
    Pipeline : ``correct_epochs=True`` trains the final network for these epochs.

    Examples
    --------
    >>> from skprune import corrected_epochs
    >>> corrected_epochs(160, 0.5), corrected_epochs(160, 0.3), corrected_epochs(160, 1.0)
    (240, 347, 160)
    """
    exact = epochs * (0.5 + 0.5 * density) / density
    # A tolerance keeps an exact whole number from flooring one below.
    value = math.floor(exact + 1e-9) if rounding == "floor" else round(exact)
    return max(1, value)


class Pipeline(imblearn_pipeline.Pipeline):
    """A chain of transformers, samplers (pruners) and a final estimator.

    imbalanced-learn's ``Pipeline``: a pruner's ``fit_resample`` runs while
    the pipeline fits, and is skipped when it predicts, scores or transforms,
    so test data is never pruned. Parameters of a step are set as
    ``<step>__<parameter>``. Without metadata routing, fit parameters given
    as ``<step>__<name>`` (e.g. ``randompruner__groups``) also reach a
    pruner's ``fit_resample``, which imbalanced-learn's own pipeline drops.

    Parameters
    ----------
    steps : list of (str, estimator) tuples
        The steps, in order; the last one is the final estimator.
    transform_input : list of str, default=None
        Metadata that the steps transform before it reaches the final
        estimator (needs metadata routing).
    memory : None, str or object with the joblib.Memory interface, default=None
        Caches the fitted transformers.
    verbose : bool, default=False
        Print the time each step takes.
    correct_epochs : bool, default=False
        Train a final skorch network for the paper's
        ``corrected_epochs(max_epochs, f)`` epochs, ``f`` being the fraction of
        the rows given to ``fit`` that reach it (the pruners' kept fraction):
        pruned data then gets more optimizer steps, as in the paper, instead
        of the same epochs on fewer rows. The network's ``max_epochs`` holds
        the corrected value while it fits (so that callbacks reading it, such
        as a learning-rate schedule in fractions of it, stretch too) and is
        restored afterwards. Needs a skorch net as the final step.

    Attributes
    ----------
    named_steps : Bunch
        The steps by name.
    final_epochs_ : int or None
        The epochs the final network was trained for (with
        ``correct_epochs=True``; ``None`` otherwise).
    classes_ : ndarray
        The classes of the final estimator, when it is a classifier.
    n_features_in_ : int
        Number of features of the data given to ``fit``.

    See Also
    --------
    make_pipeline : a Pipeline with steps named after their classes.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skprune import Pipeline, RandomPruner
    >>> X, y = load_digits(return_X_y=True)
    >>> pipe = Pipeline([("prune", RandomPruner(density=0.5, random_state=0)),
    ...                  ("model", LogisticRegression(max_iter=500))]).fit(X / 16, y)
    >>> pipe.named_steps["prune"].sample_indices_.size, pipe.predict(X / 16).size
    (898, 1797)
    """

    _parameter_constraints = {
        **imblearn_pipeline.Pipeline._parameter_constraints,
        "correct_epochs": ["boolean"],
    }

    def __init__(self, steps, *, transform_input=None, memory=None, verbose=False,
                 correct_epochs=False):
        super().__init__(steps, transform_input=transform_input, memory=memory,
                         verbose=verbose)
        self.correct_epochs = correct_epochs

    def fit(self, X, y=None, **params):
        """Fit every step in order, pruning with the samplers; returns ``self``.

        Parameters
        ----------
        X : array-like
        y : array-like, default=None
        **params
            ``<step>__<name>`` fit parameters, or metadata to route.
        """
        only_samplers = all(step in (None, "passthrough") or hasattr(step, "fit_resample")
                            for _, step in self.steps[:-1])
        _check_final_network(self._final_estimator, X if only_samplers else None, y)
        self.final_epochs_ = None
        self._n_fit_rows = _num_samples(X) if self.correct_epochs else None
        if self.correct_epochs:
            _check_corrects_epochs(self._final_estimator)
        own_epochs = getattr(self._final_estimator, "max_epochs", None)
        try:
            return super().fit(X, y, **params)
        finally:
            # The corrected epochs hold for this fit only: the parameter is
            # the user's, and a refit or a clone starts from it again.
            self._n_fit_rows = None
            if self.final_epochs_ is not None:
                self._final_estimator.max_epochs = own_epochs

    def _fit(self, X, y=None, routed_params=None, raw_params=None):
        Xt, yt = super()._fit(X, y, routed_params, raw_params=raw_params)
        if getattr(self, "_n_fit_rows", None) and self._final_estimator != "passthrough":
            # Set on the net itself (not passed to its fit), so that callbacks
            # that read max_epochs, such as a schedule of fractions of it
            # (StepDecay), stretch with the training.
            final = self._final_estimator
            self.final_epochs_ = corrected_epochs(final.max_epochs,
                                                  _num_samples(Xt) / self._n_fit_rows)
            final.max_epochs = self.final_epochs_
        return Xt, yt

    def _check_method_params(self, method, props, **kwargs):
        params = super()._check_method_params(method, props, **kwargs)
        if not _routing_enabled():
            for step_params in params.values():
                step_params["fit_resample"].update(step_params["fit"])
        return params


def _check_corrects_epochs(estimator):
    from skorch import NeuralNet

    if not isinstance(estimator, NeuralNet):
        raise ValueError(
            "correct_epochs=True trains the final step for more epochs on pruned data, so "
            "it must be a skorch net (trained for max_epochs epochs); got "
            f"{type(estimator).__name__}. Set correct_epochs=False, or end the pipeline "
            "with a skorch NeuralNetClassifier."
        )


def _check_final_network(estimator, X, y):
    """Fail before any step fits, with the recipe, where a plain skorch net would fail last.

    ``X`` is ``None`` when a transformer precedes the network (it decides
    what the network receives).

    A pruner accepts string labels and DataFrames and trains its query
    networks on them; a plain ``skorch.NeuralNetClassifier`` at the end then
    fails inside skorch after all the pruning. skprune's ``RecipeNet`` takes
    them.
    """
    from skorch import NeuralNetClassifier

    from .models import RecipeNet

    if not isinstance(estimator, NeuralNetClassifier) or isinstance(estimator, RecipeNet):
        return
    labels = np.asarray(y) if y is not None else None
    if labels is not None and labels.ndim == 1 and labels.dtype.kind not in "iub":
        raise ValueError(
            f"The final step, a skorch {type(estimator).__name__}, cannot train on labels "
            f"of dtype {labels.dtype} (skorch needs integer class indices 0..K-1). "
            "Encode them, e.g. y = LabelEncoder().fit_transform(y), use "
            "skprune.models.RecipeNet, or see the user guide's 'Labels and inputs'."
        )
    if hasattr(X, "iloc"):
        raise ValueError(
            f"The final step, a skorch {type(estimator).__name__}, would receive a pandas "
            "DataFrame and pass its columns to the module as keyword arguments. Give it an "
            "array (X.to_numpy(dtype='float32'), or a FunctionTransformer(np.asarray) step "
            "with set_output(transform='default')), use skprune.models.RecipeNet, or see "
            "the user guide's 'Labels and inputs'."
        )


def make_pipeline(*steps, memory=None, transform_input=None, verbose=False,
                  correct_epochs=False):
    """Construct a :class:`Pipeline` from the given estimators, named after their classes.

    Parameters
    ----------
    *steps : list of estimators
        Transformers, samplers (pruners) and a final estimator.
    memory : None, str or object with the joblib.Memory interface, default=None
        Caches the fitted transformers of the pipeline.
    transform_input : list of str, default=None
        Metadata to transform by the steps before it reaches the final
        estimator (requires metadata routing).
    verbose : bool, default=False
        Print the time each step takes.
    correct_epochs : bool, default=False
        Train a final skorch network for the paper's epochs at the kept
        fraction (see :class:`Pipeline`).

    Returns
    -------
    Pipeline

    See Also
    --------
    Pipeline : the class this builds.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skprune import RandomPruner, make_pipeline
    >>> make_pipeline(RandomPruner(density=0.5), LogisticRegression())
    Pipeline(steps=[('randompruner', RandomPruner()),
                    ('logisticregression', LogisticRegression())])
    """
    # imbalanced-learn names the steps; the pipeline is skprune's.
    named = imblearn_pipeline.make_pipeline(*steps).steps
    return Pipeline(named, memory=memory, transform_input=transform_input, verbose=verbose,
                    correct_epochs=correct_epochs)
