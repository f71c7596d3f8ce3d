"""Selection rules: which rows a pruner keeps, given their scores and a count."""

from sklearn.base import clone

from ._base import BaseSelection, EasiestFirst, HardestFirst, RankingSelection, rank_by_score

#: ``selection=`` strings and the rules they stand for.
SELECTIONS = {"hardest": HardestFirst, "easiest": EasiestFirst}


def make_selection(selection):
    """A fresh selection rule from a pruner's ``selection`` parameter.

    Parameters
    ----------
    selection : str or BaseSelection
        A name in :data:`SELECTIONS`, or a rule (cloned).

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
    "EasiestFirst",
    "HardestFirst",
    "RankingSelection",
    "make_selection",
    "rank_by_score",
]
