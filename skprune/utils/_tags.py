"""The facts about a pruning strategy, as scikit-learn estimator tags."""

import dataclasses
import functools


@dataclasses.dataclass(slots=True)
class PrunerTags:
    """What a pruning strategy is, for the code that runs or compares strategies.

    A pruner declares these once, in its ``__sklearn_tags__``; skprune's
    base class and the fairness benchmark read them with
    ``sklearn.utils.get_tags(pruner).pruner_tags``. A strategy of your own
    sets the ones that differ from the defaults::

        def __sklearn_tags__(self):
            tags = super().__sklearn_tags__()
            tags.pruner_tags.query_fraction = 0.1
            return tags

    Parameters
    ----------
    query_fraction : float in (0, 1] or None, default=1.0
        Fraction of the estimator's schedule (``max_epochs``) that the
        strategy's query network trains by default: 1.0 for scores of a
        fully trained network or of a whole training run, 0.1 for scores
        read early in training (EL2N, GraNd). ``None``: the strategy trains
        no network (random or given scores). Under the DRoP authors' query
        protocol the fairness benchmark trains a network of that fraction of
        the schedule.
    query_runs : int, default=1
        Independent query trainings the strategy's authors combine (5 for
        EL2N and GraNd); the fairness benchmark's DRoP protocol uses it as
        ``n_runs``. :class:`~skprune.DataPruner` sets it to the default of
        the pruner's own ``n_runs`` parameter (skprune's defaults follow the
        original papers), or 1 for a pruner without one.
    requires_X : bool, default=True
        Whether scoring reads the samples. A pruner that does not (given or
        random scores) accepts ``X=None`` and prunes from ``y`` alone.
    continuous_scores : bool, default=False
        Whether scores are real-valued, so that a handful of distinct values
        means a degenerate query network (counts such as forgetting events
        take few values by nature), with a warning.
    cache_scores : bool, default=True
        Whether scores are worth caching (they train a network), or cheaper
        to recompute than to look up (random draws, given scores).
    """

    query_fraction: float | None = 1.0
    query_runs: int = 1
    requires_X: bool = True
    continuous_scores: bool = False
    cache_scores: bool = True


def with_pruner_tags(tags):
    """A sampler's ``tags``, with default :class:`PrunerTags` as ``tags.pruner_tags``."""
    fields = {field.name: getattr(tags, field.name) for field in dataclasses.fields(tags)}
    return _tags_class(type(tags))(**fields, pruner_tags=PrunerTags())


@functools.cache
def _tags_class(base):
    # The tags of imbalanced-learn's samplers, whatever class it uses for them
    # (it has no public one), plus one field.
    return dataclasses.make_dataclass(
        "Tags", [("pruner_tags", PrunerTags | None, None)], bases=(base,), slots=True,
        namespace={"__doc__": "Sampler tags with :class:`PrunerTags`."},
    )
