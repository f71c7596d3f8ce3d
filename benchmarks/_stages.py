"""Which cells run when, so that shared scores are computed once.

Cells of one strategy and seed share that strategy's scores, and the MetriQ
cells of a seed share their validation recalls; both come from the disk
cache once computed. Started side by side, sibling cells would each compute
them: wasted work, not wrong results.
"""

from ._cells import shared_computations
from ._registry import PROTOCOLS


def stages(pending, factory):
    """Split pending cells into two stages that compute shared results once.

    The first stage runs, for every shared computation, one "leader" cell
    that needs only it (or, when no pending cell does, a warm-up fit that
    only fills the cache), next to the cells that share nothing. The second
    stage runs the rest, which then read from the cache.

    Parameters
    ----------
    pending : list of Cell
    factory : benchmarks._cells.PrunerFactory
        Says which MetriQ recalls the run's cells share.

    Returns
    -------
    warmups : list of (kind, strategy, seed)
        Cache-filling fits for :func:`benchmarks._cells.warm_cache`.
    first, rest : list of Cell
        The cells of each stage.
    """
    needs = {cell: shared_computations(factory, cell) for cell in pending}
    leaders = {}
    for cell, computations in needs.items():
        # A Strategy cell reads scores+validation but does not compute the
        # validation predictions: it cannot lead that computation.
        if len(computations) == 1 and (computations[0][0] != "scores+validation"
                                       or PROTOCOLS[cell.protocol].uses_metriq):
            leaders.setdefault(computations[0], cell)
    every_computation = dict.fromkeys(c for computations in needs.values() for c in computations)
    warmups = [computation for computation in every_computation if computation not in leaders]
    first = list(leaders.values()) + [cell for cell in pending if not needs[cell]]
    rest = [cell for cell in pending if needs[cell] and cell not in first]
    return warmups, first, rest
