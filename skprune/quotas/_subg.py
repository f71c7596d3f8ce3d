"""SUBG: subsample every group to the size of the smallest (Idrissi et al., 2022)."""

from .._docstrings import quota_attributes
from ._fixed import BalancedQuota


@quota_attributes("``1 / N_k`` for a group of ``N_k`` rows.")
class SUBG(BalancedQuota):
    """Every group keeps the same number of rows, up to the smallest group's size.

    The SUBG baseline of group robustness (``quota="subg"``): every group is
    subsampled to the same size, and with :class:`~skprune.RandomPruner`
    the rows are drawn at random within each group, as Idrissi et al. do.
    Fitted with ``groups`` it balances the groups; without, the classes
    (their SUBY).

    **The density.** Idrissi et al. keep ``N_min`` rows of every group, where
    ``N_min`` is the smallest group's size: a subset of ``G * N_min`` rows for
    ``G`` groups, density ``subg_density_ = G * N_min / N``. A pruner keeps
    ``round(density * N)`` rows whatever its quota, so:

    - at ``density <= subg_density_`` every group keeps the same count (up
      to one row, from rounding): SUBG on a smaller budget, and at
      ``subg_density_`` Idrissi et al.'s subset itself;
    - at a higher density no group-balanced subset of that size exists.
      Then the groups that cannot give the common count are kept whole and
      the other groups share the rest of the budget equally (water-filling):
      of the subsets of that size, the one whose largest group is smallest.
      ``balanced_`` is ``False``, and ``group_counts_`` (with ``groups``) or
      ``class_counts_`` shows the counts.

    The counts are those of ``quota="balanced"``, which is this rule without
    the name and the attributes that say whether the budget allowed it.

    Read more in the :ref:`User Guide <groups>`.

    Attributes
    ----------
    {quota_attributes}
    subg_size_ : int
        ``N_min``, the size of the smallest group: the rows every group
        keeps in Idrissi et al.'s SUBG.
    subg_density_ : float
        ``G * N_min / N``, the density of Idrissi et al.'s SUBG subset.
    balanced_ : bool
        Whether every group can keep the same count at the pruner's
        density: ``round(density * N) <= G * N_min``.

    See Also
    --------
    BalancedQuota : the same counts, without the SUBG attributes.
    MetriQ : counts that follow every group's validation error rate.

    Notes
    -----
    Idrissi, Arjovsky, Pezeshki and Lopez-Paz, "Simple data balancing
    achieves competitive worst-group-accuracy", CLeaR 2022
    (arXiv 2110.14503).

    Examples
    --------
    >>> import numpy as np
    >>> from skprune import RandomPruner
    >>> y = np.repeat([0, 1], 100)
    >>> groups = np.repeat([0, 1, 2, 3], [90, 10, 20, 80])  # class x attribute
    >>> X = np.zeros((200, 1))
    >>> pruner = RandomPruner(density=0.2, quota="subg", random_state=0)
    >>> _ = pruner.fit_resample(X, y, groups=groups)
    >>> pruner.group_counts_, pruner.quota_.subg_density_, pruner.quota_.balanced_
    ({0: 10, 1: 10, 2: 10, 3: 10}, 0.2, True)
    >>> _ = pruner.set_params(density=0.4).fit_resample(X, y, groups=groups)
    >>> pruner.group_counts_, pruner.quota_.balanced_
    ({0: 25, 1: 10, 2: 20, 3: 25}, False)
    """

    def _weights(self, context):
        sizes = context.group_sizes
        self.subg_size_ = int(sizes.min())
        self.subg_density_ = sizes.size * self.subg_size_ / context.n_samples
        self.balanced_ = bool(context.n_keep <= sizes.size * self.subg_size_)
        return super()._weights(context)
