"""Selection rules: which rows a pruner keeps, given their scores and a count.

Every pruner's ``selection`` parameter takes a rule or the name of one in
:data:`SELECTIONS`. A name stands for its rule with default parameters
(``"offset"`` is ``OffsetWindow()``, ``"coverage"`` is
``CoverageCentric()``); pass an instance to choose them, e.g.
``selection=CoverageCentric(beta=0.3)``.
"""

from sklearn.base import clone

from ._base import BaseSelection, EasiestFirst, HardestFirst, RankingSelection, rank_by_score
from ._coverage import CoverageCentric
from ._offset import OffsetWindow

#: ``selection=`` strings and the rules they stand for (with default parameters).
SELECTIONS = {
    "hardest": HardestFirst,
    "easiest": EasiestFirst,
    "offset": OffsetWindow,
    "coverage": CoverageCentric,
}


def make_selection(selection):
    """A fresh selection rule from a pruner's ``selection`` parameter.

    Parameters
    ----------
    selection : str or BaseSelection
        A name in :data:`SELECTIONS` (its rule with default parameters), or
        a rule (cloned).

    Returns
    -------
    BaseSelection
    """
    if isinstance(selection, str):
        return SELECTIONS[selection]()
    return clone(selection)


__all__ = [
    "SELECTIONS",
    "BaseSelection",
    "CoverageCentric",
    "EasiestFirst",
    "HardestFirst",
    "OffsetWindow",
    "RankingSelection",
    "make_selection",
    "rank_by_score",
]
