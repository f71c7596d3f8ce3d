"""Per-sample scores as plain functions of arrays.

Every strategy of skprune scores samples by one of these functions; the
pruners only add the query training that produces their inputs. With a
training loop of your own, record the arrays yourself (for example with
:class:`skprune.recording.DynamicsRecorder`), score them here, and select
with :class:`skprune.ScorePruner` (see :ref:`own_loop`).

Every function takes arrays and returns one score per sample. All but
:func:`area_under_margin` follow skprune's convention: higher = harder =
kept first.
"""

import numpy as np
import torch

__all__ = [
    "area_under_margin",
    "dynamic_uncertainty",
    "el2n",
    "forgetting_events",
    "k_center_order",
    "pick_order_scores",
    "prototype_distances",
    "uncertainty",
]

#: The measures of :func:`uncertainty`.
UNCERTAINTY_MEASURES = ("least_confidence", "margin", "entropy")


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
    skprune.ForgettingPruner : prunes by these counts.
    skprune.recording.DynamicsRecorder : records ``correct_`` in any training loop, one
        row per epoch.

    Examples
    --------
    >>> from skprune.scores import forgetting_events
    >>> forgetting_events([[0, 0], [1, 0], [1, 0], [0, 0], [1, 0], [0, 0], [1, 0]])
    array([2., 7.])
    """
    correct = _epochs_by_samples(correct, "correct", dtype=bool)
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
        In ``[0, 0.5]``: probabilities move by at most 1.

    See Also
    --------
    skprune.DynamicUncertaintyPruner : prunes by this score.
    skprune.recording.DynamicsRecorder : records ``proba_``.

    Examples
    --------
    >>> from skprune.scores import dynamic_uncertainty
    >>> dynamic_uncertainty([[0.0], [1.0], [0.0], [0.0]], window=2)
    array([0.33333333])
    """
    proba = _epochs_by_samples(proba, "proba", dtype=float)
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


def area_under_margin(margins):
    """Area under the margin of every sample (Pleiss et al., 2020).

    A sample's margin in one epoch is the logit of its assigned class minus
    the largest other logit; its AUM is the margin averaged over epochs.
    Mislabelled samples have negative AUM, hard ones small AUM and easy ones
    large AUM, so that, unlike the other scores here, *lower* means harder:
    :class:`~skprune.AUMPruner` scores ``-area_under_margin(margins)``.

    Parameters
    ----------
    margins : array-like of shape (n_epochs, n_samples)
        Every sample's margin in every epoch (for example the ``margin_`` of
        a :class:`~skprune.recording.DynamicsRecorder` with ``margins=True``).

    Returns
    -------
    aum : ndarray of shape (n_samples,)
        Negative where the network kept preferring another class.

    See Also
    --------
    skprune.AUMPruner : prunes by the negated AUM.

    Examples
    --------
    >>> from skprune.scores import area_under_margin
    >>> area_under_margin([[2.0, -1.0], [4.0, -3.0]])
    array([ 3., -2.])
    """
    return _epochs_by_samples(margins, "margins", dtype=float).mean(axis=0)


def el2n(proba, y):
    """EL2N score of every sample: the norm of its error vector (Paul et al., 2021).

    ``||p - onehot(y)||_2``, where ``p`` are the predicted class
    probabilities. For logits and the cross-entropy loss the error vector is
    the loss gradient with respect to the logits, so EL2N is the cheap cousin
    of GraNd's gradient norm.

    Parameters
    ----------
    proba : array-like of shape (n_samples, n_classes)
        Predicted class probabilities (softmax of the logits).
    y : array-like of int, shape (n_samples,)
        Class of every sample, as a column index of ``proba``.

    Returns
    -------
    scores : ndarray of shape (n_samples,)
        In ``[0, sqrt(2)]``.

    See Also
    --------
    skprune.EL2NPruner : prunes by this score early in training.
    skprune.per_sample_grad_norms : the gradient norms of GraNd, EL2N's costlier cousin.

    Examples
    --------
    >>> from skprune.scores import el2n
    >>> el2n([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]], [0, 0, 0]).round(4)
    array([0.    , 0.7071, 1.4142])
    """
    proba = _samples_by_classes(proba)
    y = _class_indices(y, proba)
    error = proba.copy()
    error[np.arange(y.shape[0]), y] -= 1.0
    return np.linalg.norm(error, axis=1)


def uncertainty(proba, measure="least_confidence"):
    """Uncertainty of every row of class probabilities; higher = more uncertain.

    ``"least_confidence"``: ``1 - max_k p_k``. ``"margin"``:
    ``1 - (p_(1) - p_(2))``, one minus the gap between the two largest
    probabilities. ``"entropy"``: ``-sum_k p_k log p_k`` (natural log,
    ``0 log 0 = 0``). None uses the label (Coleman et al., 2020).

    Parameters
    ----------
    proba : array-like of shape (n_samples, n_classes)
        Rows of probabilities.
    measure : {"least_confidence", "margin", "entropy"}, default="least_confidence"

    Returns
    -------
    ndarray of shape (n_samples,)

    See Also
    --------
    skprune.UncertaintyPruner : prunes by these measures.
    el2n : the error of the prediction, which reads the label.

    Examples
    --------
    >>> from skprune.scores import uncertainty
    >>> proba = [[1.0, 0.0, 0.0], [0.5, 0.3, 0.2]]
    >>> uncertainty(proba).tolist(), uncertainty(proba, "margin").tolist()
    ([0.0, 0.5], [0.0, 0.8])
    >>> uncertainty(proba, "entropy").round(4).tolist()
    [0.0, 1.0297]
    """
    proba = _samples_by_classes(proba)
    if measure == "least_confidence":
        return 1.0 - proba.max(axis=1)
    if measure == "margin":
        if proba.shape[1] < 2:
            return np.zeros(proba.shape[0])
        top_two = np.sort(proba, axis=1)[:, -2:]
        return 1.0 - (top_two[:, 1] - top_two[:, 0])
    if measure == "entropy":
        logs = np.log(np.where(proba > 0, proba, 1.0))
        return 0.0 - (proba * logs).sum(axis=1)
    raise ValueError(f"measure must be one of {UNCERTAINTY_MEASURES}; got {measure!r}.")


def prototype_distances(features, y):
    """Euclidean distance of every row to the mean of its class's rows.

    The label-aware prototype metric of Sorscher et al. (2022): atypical
    samples lie far from their class's mean embedding.

    Parameters
    ----------
    features : array-like of shape (n_samples, n_features)
        Embeddings (for example a network's penultimate layer).
    y : array-like of shape (n_samples,)
        Class labels.

    Returns
    -------
    distances : ndarray of shape (n_samples,)

    See Also
    --------
    skprune.PrototypePruner : prunes by these distances.
    pick_order_scores : a cover of the same embeddings.

    Examples
    --------
    >>> import numpy as np
    >>> from skprune.scores import prototype_distances
    >>> prototype_distances(np.array([[0.0], [2.0], [10.0]]), np.array([0, 0, 1]))
    array([1., 1., 0.])
    """
    y = np.asarray(y)
    features = np.asarray(features, dtype=float).reshape(len(y), -1)
    distances = np.empty(len(y))
    for label in np.unique(y):
        rows = y == label
        distances[rows] = np.linalg.norm(features[rows] - features[rows].mean(axis=0), axis=1)
    return distances


def k_center_order(features, device="cpu"):
    """Every row of ``features`` in the order greedy k-center picks it.

    The first pick is the row nearest the mean; each next pick is the row
    farthest from all rows picked so far (ties: the lowest index). The first
    ``k`` picks are the greedy k-center solution for every ``k``, whose
    covering radius is at most twice the optimum (Gonzalez, 1985), so one
    ordering serves every density.

    Parameters
    ----------
    features : array-like of shape (n_samples, n_features)
    device : str or torch.device, default="cpu"
        Where the distances are computed; ``O(n_samples**2 * n_features)``
        work, so a GPU pays off from a few thousand rows.

    Returns
    -------
    order : ndarray of int, shape (n_samples,)

    See Also
    --------
    pick_order_scores : scores from this order, for every density at once.

    Examples
    --------
    >>> from skprune.scores import k_center_order
    >>> k_center_order([[0.0], [1.0], [10.0], [11.0]])
    array([1, 3, 0, 2])
    """
    points = torch.as_tensor(np.asarray(features, dtype=np.float32), device=device)
    n = points.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    points = points.reshape(n, -1)
    first = int(torch.argmin(((points - points.mean(0)) ** 2).sum(1)))
    order = np.empty(n, dtype=np.int64)
    order[0] = first
    nearest = ((points - points[first]) ** 2).sum(1)
    nearest[first] = -1.0  # picked rows never win again
    for position in range(1, n):
        pick = int(torch.argmax(nearest))
        order[position] = pick
        nearest = torch.minimum(nearest, ((points - points[pick]) ** 2).sum(1))
        nearest[order[: position + 1]] = -1.0
    return order


def pick_order_scores(features, y=None, device="cpu"):
    """``1 - position / n`` of every row in its (class's) greedy k-center order.

    Keeping the highest scores keeps the greedy k-center set of the kept
    size (Sener and Savarese, 2018), at any density.

    Parameters
    ----------
    features : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,) or None, default=None
        Order within each class; ``None`` orders all rows together.
    device : str or torch.device, default="cpu"
        Where :func:`k_center_order` computes.

    Returns
    -------
    scores : ndarray of shape (n_samples,)
        In ``(0, 1]``.

    See Also
    --------
    skprune.CoreSetPruner : prunes by these scores.
    k_center_order : the order behind them.

    Examples
    --------
    >>> from skprune.scores import pick_order_scores
    >>> pick_order_scores([[0.0], [1.0], [10.0], [11.0]])
    array([0.5 , 1.  , 0.25, 0.75])
    """
    features = np.asarray(features)
    scores = np.empty(features.shape[0])
    blocks = [np.arange(features.shape[0])] if y is None else [
        np.flatnonzero(np.asarray(y) == label) for label in np.unique(y)
    ]
    for rows in blocks:
        order = k_center_order(features[rows], device)
        scores[rows[order]] = 1.0 - np.arange(rows.size) / rows.size
    return scores


def _epochs_by_samples(values, name, dtype):
    values = np.asarray(values, dtype=dtype)
    if values.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D (n_epochs, n_samples): one row per epoch, one column "
            f"per sample; got shape {values.shape}."
        )
    return values


def _samples_by_classes(proba):
    proba = np.asarray(proba, dtype=float)
    if proba.ndim != 2:
        raise ValueError(f"proba must be 2-D (n_samples, n_classes); got shape {proba.shape}.")
    return proba


def _class_indices(y, proba):
    y = np.asarray(y)
    if y.shape != (proba.shape[0],) or (y.size and y.dtype.kind not in "iu"):
        raise ValueError(
            f"y must hold one integer class index per row of proba, shape "
            f"({proba.shape[0]},); got shape {y.shape} and dtype {y.dtype}."
        )
    if y.size and (y.min() < 0 or y.max() >= proba.shape[1]):
        raise ValueError(
            f"y must index the {proba.shape[1]} columns of proba (0 to "
            f"{proba.shape[1] - 1}); got labels from {y.min()} to {y.max()}."
        )
    return y
