"""Scores computed from per-sample training dynamics, and their recording.

The formulas are plain functions of the recorded arrays (one row per epoch,
one column per sample), so they can be checked on hand-made records; the
pruners only add the query training that produces the records.
"""

import numpy as np

from ._query_training import check_skorch_classifier, train_query_net
from .callbacks import PositionBatchSampler, TrainingDynamicsRecorder
from .exceptions import TrainingDivergedError

__all__ = ["dynamic_uncertainty", "forgetting_events", "record_dynamics"]

_RECORDER_NAME = "skprune_dynamics_recorder"


def forgetting_events(correct, never_learned="presentations"):
    """Forgetting events of every sample (Toneva et al., 2019).

    A forgetting event is a transition from classified correctly to
    misclassified between two consecutive presentations of a sample. A
    sample that is never classified correctly has, in Toneva et al.'s
    convention, infinitely many events; it scores the number of its
    presentations instead, which ranks it above every sample that was
    learnt at some point (those have fewer events than presentations).

    Parameters
    ----------
    correct : array-like of bool, shape (n_presentations, n_samples)
        Row ``t`` says whether each sample was classified correctly at its
        ``t``-th presentation (one presentation per epoch).
    never_learned : {"presentations", "zero"}, default="presentations"
        Score of a sample never classified correctly: its number of
        presentations (Toneva et al.: such samples are "unforgettable" only
        in name, they are never learnt), or 0, as the DRoP authors' code
        counts them (the same as samples learnt once and never forgotten).

    Returns
    -------
    events : ndarray of shape (n_samples,), dtype float

    See Also
    --------
    ForgettingPruner : prunes by these counts.

    Examples
    --------
    >>> from skprune._dynamics import forgetting_events
    >>> forgetting_events([[0, 0], [1, 0], [1, 0], [0, 0], [1, 0], [0, 0], [1, 0]])
    array([2., 7.])
    """
    correct = np.asarray(correct, dtype=bool)
    if correct.ndim != 2:
        raise ValueError(
            f"correct must be 2-D (n_presentations, n_samples); got shape {correct.shape}."
        )
    events = np.count_nonzero(correct[:-1] & ~correct[1:], axis=0).astype(float)
    if never_learned == "presentations":
        events[~correct.any(axis=0)] = correct.shape[0]
    elif never_learned != "zero":
        raise ValueError(
            f"never_learned must be 'presentations' or 'zero'; got {never_learned!r}."
        )
    return events


def dynamic_uncertainty(proba, window=10, windows="all"):
    """Dynamic uncertainty of every sample (He et al., 2023).

    The standard deviation of the true-class probability over ``window``
    consecutive epochs, averaged over all ``n_epochs - window + 1`` such
    windows. Samples whose prediction keeps changing score high; samples
    learnt early (or never) score low. The population standard deviation
    (``ddof=0``) is used; the sample version differs by a constant factor and
    ranks samples the same way.

    Parameters
    ----------
    proba : array-like of shape (n_epochs, n_samples)
        Predicted probability of the true class after (or during) each
        epoch.
    window : int, default=10
        Epochs per window, ``2 <= window <= n_epochs`` (``n_epochs - 1``
        with ``windows="before-last"``).
    windows : {"all", "before-last"}, default="all"
        Which windows are averaged: every window of ``window`` consecutive
        epochs, or only those that end before the final epoch, as in He et
        al.'s definition (the final epoch's probabilities then enter no
        window).

    Returns
    -------
    uncertainty : ndarray of shape (n_samples,)

    See Also
    --------
    DynamicUncertaintyPruner : prunes by this score.

    Examples
    --------
    >>> from skprune._dynamics import dynamic_uncertainty
    >>> dynamic_uncertainty([[0.0], [1.0], [0.0], [0.0]], window=2)
    array([0.33333333])
    """
    proba = np.asarray(proba, dtype=float)
    if proba.ndim != 2:
        raise ValueError(
            f"proba must be 2-D (n_epochs, n_samples); got shape {proba.shape}."
        )
    if windows == "before-last":
        proba = proba[:-1]
    elif windows != "all":
        raise ValueError(f"windows must be 'all' or 'before-last'; got {windows!r}.")
    n_epochs = proba.shape[0]
    if window > n_epochs:
        raise ValueError(
            f"window={window} is larger than the number of recorded epochs "
            f"({n_epochs}). Use a window of at most {n_epochs} epochs or train longer."
        )
    if window < 2:
        raise ValueError(f"window must be at least 2 epochs; got {window}.")
    # Window sums from cumulative sums cost O(n_epochs) per sample instead of
    # O(n_epochs * window); centring first keeps E[p^2] - E[p]^2 from losing
    # precision to cancellation.
    centred = proba - proba.mean(axis=0)
    zero = np.zeros((1, proba.shape[1]))
    sums = np.concatenate([zero, np.cumsum(centred, axis=0)])
    squares = np.concatenate([zero, np.cumsum(centred**2, axis=0)])
    window_mean = (sums[window:] - sums[:-window]) / window
    window_var = (squares[window:] - squares[:-window]) / window - window_mean**2
    return np.sqrt(np.clip(window_var, 0.0, None)).mean(axis=0)


def record_dynamics(estimator, X, y, seed, *, owner, record="train", margins=False):
    """Train a query clone of ``estimator`` on ``(X, y)`` and record its dynamics.

    The clone trains over the estimator's full schedule through the one
    query path (:func:`skprune._query_training.train_query_net`: ``train_split=None``,
    output and label checks, divergence guard), so every row of ``X`` is
    recorded every epoch. With ``record="train"`` its batches come from a
    :class:`~skprune.callbacks.PositionBatchSampler` that keeps the
    estimator's batch size and shuffling (its ``drop_last`` is ignored, so
    that no sample misses an epoch). The estimator is never modified.

    Parameters
    ----------
    estimator : skorch.NeuralNetClassifier
    X : array-like or torch Dataset
    y : ndarray of shape (n_samples,)
    seed : int
        Seeds the network's initialisation and the shuffling.
    owner : str
        Name of the pruner, used in error messages.
    record : {"train", "eval"}, default="train"
        See :class:`~skprune.callbacks.TrainingDynamicsRecorder`.
    margins : bool, default=False
        Also record margins (``recorder.margin_``).

    Returns
    -------
    recorder : TrainingDynamicsRecorder
        The fitted recorder: ``correct_``, ``proba_`` and ``margin_``, each of
        shape ``(n_epochs, n_samples)``.

    Raises
    ------
    TrainingDivergedError
        If the training loss, or a recorded probability, is not finite.
    """
    check_skorch_classifier(estimator, owner)
    n_samples = y.shape[0]
    params = {}
    if record == "train":
        iterator_params = estimator.get_params_for("iterator_train")
        if any(iterator_params.get(name) is not None for name in ("sampler", "batch_sampler")):
            raise ValueError(
                f"{owner} presents every sample once per epoch and tracks which samples "
                "each batch holds, so the estimator cannot use its own "
                "iterator_train__sampler or iterator_train__batch_sampler."
            )
        batch_size = iterator_params.get("batch_size", estimator.batch_size)
        if batch_size == -1:
            batch_size = n_samples
        params = {
            "iterator_train__batch_sampler": PositionBatchSampler(
                n_samples, batch_size, shuffle=bool(iterator_params.get("shuffle", False))
            ),
            "iterator_train__batch_size": 1,
            "iterator_train__shuffle": False,
            "iterator_train__drop_last": False,
        }
    net, _ = train_query_net(
        estimator, X, y, seed, owner=owner,
        callbacks=[(_RECORDER_NAME, TrainingDynamicsRecorder(record=record, margins=margins))],
        **params,
    )
    recorder = dict(net.callbacks_)[_RECORDER_NAME]
    if not np.isfinite(recorder.proba_).all():
        raise TrainingDivergedError(
            f"The query network trained by {owner} diverged: it predicted non-finite "
            "probabilities. Scores computed from them would be meaningless. Lower the "
            "estimator's learning rate (lr), add gradient clipping, or check the inputs "
            "for NaN or huge values."
        )
    return recorder
