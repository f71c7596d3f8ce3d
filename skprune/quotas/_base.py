"""The interface every quota object implements."""

from abc import ABCMeta, abstractmethod

from sklearn.base import BaseEstimator


class BaseQuota(BaseEstimator, metaclass=ABCMeta):
    """A rule that gives every class a non-negative density weight.

    A pruner turns the weights into kept counts per class with
    :func:`~skprune.quotas.allocate_class_counts`. Quotas are estimators
    themselves, so their parameters can be searched over in a pipeline
    (``"pruner__quota__validation"``) and they are cloned, never fitted in
    place.
    """

    @abstractmethod
    def class_weights(self, pruner, X, y, classes, seed):
        """Density weight of every class.

        Parameters
        ----------
        pruner : DataPruner
            The pruner being fitted; quotas read its ``estimator``,
            ``density`` and ``memory``.
        X : array-like or torch Dataset
            The data given to ``fit_resample``, validated.
        y : ndarray of shape (n_samples,)
        classes : ndarray of shape (n_classes,)
            Sorted unique labels of ``y``.
        seed : int
            Seed for everything random in the quota.

        Returns
        -------
        weights : ndarray of shape (n_classes,)
            Non-negative density weights, aligned with ``classes``.
        attributes : dict
            Fitted attributes to set on the pruner (e.g. ``class_recall_``).
        """
