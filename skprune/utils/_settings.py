"""Checking a pruner's settings before any network trains."""

from ..selection import make_selection


def check_pruner_settings(pruner):
    """Raise, before any training, for settings of a pruner that cannot give scores.

    Validates the parameters of ``pruner``, of its quota and selection rule,
    and of the pruner a :class:`~skprune.StrategyQ` quota copies
    (scikit-learn's parameter constraints), then what each of those pruners
    checks of its parameters together (for example a Dynamic Uncertainty
    window longer than the estimator's schedule). ``fit_resample`` runs the
    same checks on its way; this runs them without data, for example over a
    whole sweep before its first fit.

    Parameters
    ----------
    pruner : DataPruner

    Raises
    ------
    sklearn.utils._param_validation.InvalidParameterError
        For a parameter outside its constraints (a ``ValueError``).
    ValueError or TypeError
        For settings that do not fit together, naming them and the fix.

    Examples
    --------
    >>> from skprune import RandomPruner
    >>> from skprune.utils import check_pruner_settings
    >>> check_pruner_settings(RandomPruner(density=0.5))
    >>> check_pruner_settings(RandomPruner(density=1.5))
    Traceback (most recent call last):
    ...
    sklearn.utils._param_validation.InvalidParameterError: The 'density' parameter ...
    """
    inner = getattr(getattr(pruner, "quota", None), "pruner", None)
    for part in (pruner, pruner.quota, inner, None if inner is None else inner.quota):
        if hasattr(part, "_validate_params"):
            part._validate_params()
    for each in (pruner,) if inner is None else (pruner, inner):
        check_selection_and_schedule(each)


def check_selection_and_schedule(pruner):
    """The checks of :func:`check_pruner_settings` that ``fit_resample`` has not made yet.

    Returns
    -------
    selection : BaseSelection
        The pruner's selection rule, validated.
    """
    selection = make_selection(pruner.selection)
    selection._validate_params()
    pruner._check_before_scoring()
    return selection
