"""Pipelines that prune at fit time only.

scikit-learn's own ``Pipeline`` cannot change the number of samples;
imbalanced-learn's runs a sampler's ``fit_resample`` while fitting and skips
it when predicting or scoring, which is what pruning needs: test data is
never pruned. skprune's ``Pipeline`` is imbalanced-learn's, with one change:
without metadata routing, a step parameter such as ``randompruner__groups``
reaches the pruner's ``fit_resample`` (imbalanced-learn passes step
parameters to ``fit`` only, and a sampler never sees them).
"""

import numpy as np
from imblearn import pipeline as imblearn_pipeline
from sklearn.utils.metadata_routing import _routing_enabled

__all__ = ["Pipeline", "make_pipeline"]


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

    Attributes
    ----------
    named_steps : Bunch
        The steps by name.
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
        return super().fit(X, y, **params)

    def _check_method_params(self, method, props, **kwargs):
        params = super()._check_method_params(method, props, **kwargs)
        if not _routing_enabled():
            for name, step_params in params.items():
                step_params["fit_resample"].update(step_params["fit"])
        return params


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


def make_pipeline(*steps, memory=None, transform_input=None, verbose=False):
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
    return Pipeline(named, memory=memory, transform_input=transform_input, verbose=verbose)
