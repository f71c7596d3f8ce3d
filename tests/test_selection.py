"""Selection rules: which rows a group keeps, given scores and a count."""

import itertools

import numpy as np
import pytest
from conftest import make_tiny_net, small_imbalanced
from sklearn.base import BaseEstimator, clone
from skorch.callbacks import Callback

import skprune
from skprune.cache import clear_process_cache
from skprune.selection import (
    SELECTIONS,
    BaseSelection,
    CoverageCentric,
    EasiestFirst,
    HardestFirst,
    OffsetWindow,
    make_selection,
    rank_by_score,
)
from skprune.selection._coverage import allocate_strata, floor_fraction, stratum_index


def rs(seed=0):
    return np.random.RandomState(seed)


class FirstRows(BaseSelection):
    """Keeps the first rows it is given: leaves every group but the first empty."""

    def select_group(self, scores, count, random_state):
        return np.arange(count)


RULES = [
    HardestFirst(),
    EasiestFirst(),
    OffsetWindow(offset=0.2),
    CoverageCentric(beta=0.1, n_strata=5),
    FirstRows(),
]


def rule_id(rule):
    return type(rule).__name__


def check_kept(kept, group_index, expected_counts=None, n_keep=None):
    """Sorted, unique, in range; exact counts per group or a total with one of each."""
    assert kept.dtype.kind == "i"
    assert np.all(np.diff(kept) > 0)
    assert kept.min() >= 0 and kept.max() < group_index.size
    per_group = np.bincount(group_index[kept], minlength=group_index.max() + 1)
    if expected_counts is not None:
        np.testing.assert_array_equal(per_group, expected_counts)
    if n_keep is not None:
        assert kept.size == n_keep
        assert np.all(per_group >= 1)


# HardestFirst and EasiestFirst -------------------------------------------------------


def test_hardest_and_easiest_are_complements_at_half_density():
    order = rs(0).permutation(40)
    scores = np.arange(40.0)[order]
    group_index = (np.arange(40) % 2)[order]  # both groups in either half of the scores
    counts = np.array([10, 10])
    hardest = HardestFirst().select(scores, group_index, counts, rs(0))
    easiest = EasiestFirst().select(scores, group_index, counts, rs(0))
    assert np.intersect1d(hardest, easiest).size == 0
    np.testing.assert_array_equal(np.union1d(hardest, easiest), np.arange(40))

    hardest = HardestFirst().select_global(scores, group_index, 20, rs(0))
    easiest = EasiestFirst().select_global(scores, group_index, 20, rs(0))
    np.testing.assert_array_equal(np.sort(scores[hardest]), np.arange(20.0, 40.0))
    np.testing.assert_array_equal(np.union1d(hardest, easiest), np.arange(40))
    assert np.intersect1d(hardest, easiest).size == 0


@pytest.mark.parametrize("rule", [HardestFirst(), EasiestFirst(), OffsetWindow(0.2),
                                  CoverageCentric(beta=0.2, n_strata=2)], ids=rule_id)
def test_ties_broken_reproducibly(rule):
    scores = rs(1).randint(0, 3, size=60).astype(float)  # many ties
    group_index = np.repeat([0, 1], 30)
    counts = np.array([7, 11])
    first = rule.select(scores, group_index, counts, rs(0))
    np.testing.assert_array_equal(first, rule.select(scores, group_index, counts, rs(0)))
    assert not np.array_equal(first, rule.select(scores, group_index, counts, rs(1)))
    first = rule.select_global(scores, group_index, 15, rs(0))
    np.testing.assert_array_equal(first, rule.select_global(scores, group_index, 15, rs(0)))
    assert not np.array_equal(first, rule.select_global(scores, group_index, 15, rs(1)))


# The contract of select and select_global ----------------------------------------------


def group_data(kind, seed=0):
    rng = rs(seed)
    group_index = np.repeat(np.arange(4), [25, 7, 1, 12])
    if kind == "separated":
        # Group g scores in [g, g + 1): hardest or easiest rules starve groups.
        scores = group_index + rng.uniform(size=group_index.size)
    elif kind == "ties":
        scores = rng.randint(0, 4, size=group_index.size).astype(float)
    else:
        scores = rng.exponential(size=group_index.size)
    perm = rng.permutation(group_index.size)
    return scores[perm], group_index[perm]


@pytest.mark.parametrize("kind", ["separated", "ties", "skewed"])
@pytest.mark.parametrize("rule", RULES, ids=rule_id)
def test_select_keeps_exact_counts_sorted_unique(rule, kind):
    scores, group_index = group_data(kind)
    sizes = np.bincount(group_index)
    for counts in ([1, 1, 1, 1], [3, 7, 1, 5], sizes, [20, 2, 1, 11]):
        kept = rule.select(scores, group_index, np.array(counts), rs(0))
        check_kept(kept, group_index, expected_counts=counts)


@pytest.mark.parametrize("kind", ["separated", "ties", "skewed"])
@pytest.mark.parametrize("rule", RULES, ids=rule_id)
def test_select_global_keeps_n_keep_and_every_group(rule, kind):
    scores, group_index = group_data(kind)
    for n_keep in (4, 5, 9, 30, group_index.size):
        kept = rule.select_global(scores, group_index, n_keep, rs(0))
        check_kept(kept, group_index, n_keep=n_keep)


def test_select_global_fills_groups_a_rule_leaves_empty():
    group_index = np.array([0, 0, 0, 0, 0, 0, 1, 1, 2])
    scores = np.arange(9.0)
    # FirstRows alone would keep rows 0-3, all of group 0.
    kept = FirstRows().select_global(scores, group_index, 4, rs(0))
    check_kept(kept, group_index, n_keep=4)
    np.testing.assert_array_equal(kept, [0, 1, 6, 8])
    # HardestFirst alone would keep rows 6-8 (no group 0), EasiestFirst 0-2 (only group 0).
    kept = HardestFirst().select_global(scores, group_index, 3, rs(0))
    np.testing.assert_array_equal(kept, [5, 7, 8])
    kept = HardestFirst().select_global(scores[::-1].copy(), group_index, 3, rs(0))
    check_kept(kept, group_index, n_keep=3)
    kept = EasiestFirst().select_global(scores, group_index, 3, rs(0))
    np.testing.assert_array_equal(kept, [0, 6, 8])


# OffsetWindow --------------------------------------------------------------------------


def test_offset_skips_exactly_the_easiest_rows_as_data_diet():
    scores = rs(2).permutation(20).astype(float)
    # data_diet/data.py, subset_train_idxs_by_offset: scores.argsort()[offset:offset + size].
    data_diet = scores.argsort()[5:11]
    kept = OffsetWindow(offset=0.25).select_group(scores, 6, rs(0))  # skips round(5.0)
    np.testing.assert_array_equal(kept, data_diet)
    assert scores[kept].min() > np.sort(scores)[4]  # the five easiest are passed over


def test_offset_per_group_rounds_half_to_even():
    # Groups of 10 and 30: round(0.25 * 10) = round(2.5) = 2, round(7.5) = 8.
    rng = rs(3)
    scores = rng.permutation(40).astype(float)
    group_index = rng.permutation(np.repeat([0, 1], [10, 30]))
    kept = OffsetWindow(offset=0.25).select(scores, group_index, np.array([3, 10]), rs(0))
    check_kept(kept, group_index, expected_counts=[3, 10])
    for group, skip, count in [(0, 2, 3), (1, 8, 10)]:
        rows = np.flatnonzero(group_index == group)
        by_easiness = rows[np.argsort(scores[rows])]
        np.testing.assert_array_equal(np.sort(by_easiness[skip:skip + count]),
                                      np.intersect1d(kept, rows))


def test_offset_window_slides_back_towards_the_easy_end():
    scores = np.arange(10.0)  # row i is the i-th easiest
    rule = OffsetWindow(offset=0.3)  # skips 3
    np.testing.assert_array_equal(rule.select_group(scores, 7, rs(0)), np.arange(3, 10))
    np.testing.assert_array_equal(rule.select_group(scores, 8, rs(0)), np.arange(2, 10))
    np.testing.assert_array_equal(rule.select_group(scores, 10, rs(0)), np.arange(10))
    group_index = np.zeros(10, dtype=int)
    np.testing.assert_array_equal(rule.select(scores, group_index, [8], rs(0)), np.arange(2, 10))


def test_offset_zero_is_easiest_first_and_a_full_window_is_hardest_first():
    scores, group_index = group_data("ties")
    counts = np.array([5, 3, 1, 6])
    np.testing.assert_array_equal(
        OffsetWindow(offset=0).select(scores, group_index, counts, rs(4)),
        EasiestFirst().select(scores, group_index, counts, rs(4)),
    )
    np.testing.assert_array_equal(
        OffsetWindow(offset=0).select_group(scores, 9, rs(4)),
        EasiestFirst().select_group(scores, 9, rs(4)),
    )
    # Globally, where no group needs filling.
    scores, group_index = group_data("skewed")
    interleaved = np.argsort(np.argsort(scores)) % 4
    np.testing.assert_array_equal(
        OffsetWindow(offset=0).select_global(scores, interleaved, 12, rs(4)),
        EasiestFirst().select_global(scores, interleaved, 12, rs(4)),
    )
    # An offset past n - count slides the window to the hard end (no ties here).
    np.testing.assert_array_equal(
        np.sort(OffsetWindow(offset=0.99).select_group(scores, 9, rs(4))),
        np.sort(HardestFirst().select_group(scores, 9, rs(4))),
    )


def test_offset_vectorized_select_matches_select_group():
    scores, group_index = group_data("ties")
    rule = OffsetWindow(offset=0.3)
    ones = np.zeros_like(group_index)
    np.testing.assert_array_equal(rule.select(scores, ones, [17], rs(5)),
                                  np.sort(rule.select_group(scores, 17, rs(5))))
    scores, group_index = group_data("skewed")  # no ties: the same rows per group
    counts = np.array([9, 4, 1, 3])
    kept = rule.select(scores, group_index, counts, rs(5))
    expected = BaseSelection.select(rule, scores, group_index, counts, rs(6))
    np.testing.assert_array_equal(kept, expected)


# CoverageCentric -----------------------------------------------------------------------


def strata_scores(sizes, width=1.0):
    """Scores with ``sizes[k]`` rows in stratum k of ``len(sizes)`` equal strata.

    The range is pinned to ``[0, len(sizes) * width]`` by one row at each end
    (counted in the first and last stratum); the other rows sit inside
    their stratum, away from the edges.
    """
    rng = rs(7)
    n_strata = len(sizes)
    inner = list(sizes)
    inner[0] -= 1
    inner[-1] -= 1
    scores = [0.0, n_strata * width]
    for k, size in enumerate(inner):
        scores += list((k + rng.uniform(0.1, 0.9, size=size)) * width)
    return rng.permutation(np.array(scores))


def kept_per_stratum(scores, kept, n_strata, width=1.0):
    strata = np.minimum(np.floor(scores[kept] / width), n_strata - 1).astype(int)
    return np.bincount(strata, minlength=n_strata)


@pytest.mark.parametrize("sizes, budget, expected", [
    # By size: 2 -> min(2, 12 // 4), 5 -> min(5, 10 // 3), 10 -> min(10, 7 // 2), 20 -> 4.
    ([2, 5, 10, 20], 12, [2, 3, 3, 4]),
    # Two strata of 6: the one with higher scores is visited last and gets the extra row.
    ([6, 6, 3], 10, [3, 4, 3]),
    # Empty strata take no budget and do not count as strata left.
    ([4, 0, 1, 0, 7], 6, [2, 0, 1, 0, 3]),
    # A budget that fits in the small strata: they are kept whole.
    ([1, 2, 30], 21, [1, 2, 18]),
])
def test_coverage_allocation_by_strata(sizes, budget, expected):
    assert np.sum(expected) == budget
    scores = strata_scores(sizes, width=0.5)
    rule = CoverageCentric(beta=0, n_strata=len(sizes))
    for seed in range(3):
        kept = rule.select_group(scores, budget, rs(seed))
        assert np.unique(kept).size == budget
        np.testing.assert_array_equal(kept_per_stratum(scores, kept, len(sizes), 0.5), expected)


def test_coverage_strata_edges():
    np.testing.assert_array_equal(stratum_index(np.array([0.0, 0.99, 1.0, 2.5, 4.0]), 4),
                                  [0, 0, 1, 2, 3])
    np.testing.assert_array_equal(stratum_index(np.array([-3.0, 5.0]), 1), [0, 0])
    np.testing.assert_array_equal(stratum_index(np.full(4, 2.0), 10), [0, 0, 0, 0])
    np.testing.assert_array_equal(stratum_index(np.array([-1e308, 1e308]), 3), [0, 2])
    # A constant group is one stratum: a uniform sample of it.
    kept = CoverageCentric(beta=0).select_group(np.ones(10), 4, rs(0))
    assert np.unique(kept).size == 4


def test_coverage_allocation_total_is_exactly_the_budget():
    def reference(sizes, budget):  # the rule alone, no fallback
        budgets, remaining = np.zeros(len(sizes), int), budget
        for left, k in enumerate(sorted(range(len(sizes)), key=lambda k: (sizes[k], k))):
            budgets[k] = min(sizes[k], remaining // (len(sizes) - left))
            remaining -= budgets[k]
        return budgets

    for n in (1, 2, 3):
        for sizes in itertools.product(range(1, 6), repeat=n):
            for budget in range(sum(sizes) + 1):
                expected = reference(sizes, budget)
                assert expected.sum() == budget  # the fallback is never needed
                np.testing.assert_array_equal(allocate_strata(np.array(sizes), budget),
                                              expected)


def test_coverage_allocation_fallback_gives_leftover_to_largest_spare():
    # Visiting the largest stratum first leaves budget: 10 -> min(10, 6 // 2) = 3,
    # 1 -> 1, and 2 rows left go to the stratum with spare rows.
    budgets = allocate_strata(np.array([10, 1]), 6, order=np.array([0, 1]))
    np.testing.assert_array_equal(budgets, [5, 1])
    budgets = allocate_strata(np.array([9, 8, 1]), 15, order=np.array([0, 1, 2]))
    # 9 -> 5, 8 -> min(8, 10 // 2) = 5, 1 -> 1; 4 left: spare [4, 3, 0] -> all to the first.
    np.testing.assert_array_equal(budgets, [9, 5, 1])


def test_coverage_beta_drops_exactly_the_hardest_fraction():
    scores = rs(8).permutation(30).astype(float)
    hardest = np.argsort(-scores)
    rule = CoverageCentric(beta=0.1, n_strata=1)  # floor(0.1 * 30) = 3
    kept = rule.select_group(scores, 27, rs(0))
    np.testing.assert_array_equal(np.sort(kept), np.sort(hardest[3:]))
    ever_kept = np.unique(np.concatenate(
        [rule.select_group(scores, 10, rs(seed)) for seed in range(60)]))
    np.testing.assert_array_equal(ever_kept, np.sort(hardest[3:]))  # all others eligible

    # floor with floating-point care: 0.29 * 100 == 28.999999999999996, yet 29 go.
    assert floor_fraction(0.29, 100) == 29 and floor_fraction(0.1, 35) == 3
    scores = rs(9).permutation(100).astype(float)
    kept = CoverageCentric(beta=0.29).select_group(scores, 71, rs(0))
    np.testing.assert_array_equal(np.sort(kept), np.sort(np.argsort(-scores)[29:]))


def test_coverage_beta_never_leaves_fewer_than_count():
    scores = np.arange(10.0)
    rule = CoverageCentric(beta=0.5)  # would drop 5
    np.testing.assert_array_equal(np.sort(rule.select_group(scores, 8, rs(0))), np.arange(8))
    np.testing.assert_array_equal(np.sort(rule.select_group(scores, 10, rs(0))), np.arange(10))


def test_coverage_beta_cut_ties_broken_at_random():
    scores = np.array([5.0, 5.0, 5.0, 1.0, 2.0, 3.0, 0.0, 1.5, 2.5, 0.5])
    rule = CoverageCentric(beta=0.1, n_strata=1)
    dropped = {int(np.setdiff1d(np.arange(10), rule.select_group(scores, 9, rs(seed)))[0])
               for seed in range(20)}
    assert dropped == {0, 1, 2}


@pytest.mark.parametrize("n_strata", [1, 3, 50])
def test_coverage_total_is_exactly_count_and_reproducible(n_strata):
    rng = rs(10)
    for n in (1, 2, 17, 200):
        scores = rng.exponential(size=n) ** 3
        for count in sorted({1, n // 3 or 1, n // 2 or 1, n}):
            rule = CoverageCentric(beta=0.2, n_strata=n_strata)
            kept = rule.select_group(scores, count, rs(0))
            assert kept.size == count == np.unique(kept).size
            np.testing.assert_array_equal(kept, rule.select_group(scores, count, rs(0)))
    scores, group_index = group_data("skewed")
    rule = CoverageCentric(n_strata=n_strata)
    first = rule.select(scores, group_index, np.array([10, 3, 1, 6]), rs(0))
    np.testing.assert_array_equal(
        first, rule.select(scores, group_index, np.array([10, 3, 1, 6]), rs(0)))
    assert not np.array_equal(
        first, rule.select(scores, group_index, np.array([10, 3, 1, 6]), rs(1)))


def test_coverage_global_uses_all_rows_at_once():
    # Globally the strata span all groups: group 1 is the one high-score stratum.
    scores = np.concatenate([np.linspace(0, 1, 20), [10.0]])
    group_index = np.repeat([0, 1], [20, 1])
    for seed in range(5):
        kept = CoverageCentric(beta=0, n_strata=2).select_global(scores, group_index, 5,
                                                                 rs(seed))
        check_kept(kept, group_index, n_keep=5)
        assert 20 in kept


# Estimator protocol and parameter validation -------------------------------------------


@pytest.mark.parametrize("rule", [HardestFirst(), EasiestFirst(), OffsetWindow(0.3),
                                  CoverageCentric(beta=0.2, n_strata=7)], ids=rule_id)
def test_rules_are_estimators_that_clone(rule):
    assert isinstance(rule, BaseEstimator)
    copy = clone(rule)
    assert copy is not rule and type(copy) is type(rule)
    assert copy.get_params() == rule.get_params()
    assert type(rule)(**rule.get_params()).get_params() == rule.get_params()
    assert repr(copy) == repr(rule)


def test_set_params_round_trip():
    rule = CoverageCentric().set_params(beta=0.3, n_strata=4)
    assert rule.get_params() == {"beta": 0.3, "n_strata": 4}
    assert OffsetWindow().set_params(offset=0.05).get_params() == {"offset": 0.05}


@pytest.mark.parametrize("rule, name", [
    (OffsetWindow(offset=1.0), "offset"),
    (OffsetWindow(offset=-0.1), "offset"),
    (OffsetWindow(offset="0.1"), "offset"),
    (CoverageCentric(beta=1.0), "beta"),
    (CoverageCentric(beta=-0.01), "beta"),
    (CoverageCentric(n_strata=0), "n_strata"),
    (CoverageCentric(n_strata=2.5), "n_strata"),
])
def test_bad_parameters_raise_naming_them(rule, name):
    scores, group_index = np.arange(6.0), np.array([0, 0, 0, 1, 1, 1])
    match = f"'{name}' parameter of {type(rule).__name__}"
    with pytest.raises(ValueError, match=match):
        rule.select(scores, group_index, np.array([1, 1]), rs(0))
    with pytest.raises(ValueError, match=match):
        rule.select_global(scores, group_index, 2, rs(0))
    with pytest.raises(ValueError, match=match):
        rule.select_group(scores, 2, rs(0))
    X, y = small_imbalanced()
    with pytest.raises(ValueError, match=match):
        skprune.RandomPruner(density=0.5, selection=rule, random_state=0).fit_resample(X, y)


def test_string_names_are_default_rules():
    assert set(SELECTIONS) >= {"hardest", "easiest", "offset", "coverage"}
    for name, rule in [("offset", OffsetWindow()), ("coverage", CoverageCentric())]:
        made = make_selection(name)
        assert type(made) is type(rule) and made.get_params() == rule.get_params()
    rule = OffsetWindow(0.3)
    made = make_selection(rule)
    assert made is not rule and made.get_params() == rule.get_params()


# With pruners ----------------------------------------------------------------------------


@pytest.mark.parametrize("selection", [CoverageCentric(beta=0.2, n_strata=4), "coverage",
                                       OffsetWindow(0.1), "offset", "easiest"])
def test_quota_not_rule_sets_class_counts(selection):
    X, y = small_imbalanced()
    pruner = skprune.RandomPruner(density=0.3, quota="proportional", selection=selection,
                                  random_state=0)
    X_kept, y_kept = pruner.fit_resample(X, y)
    hardest = skprune.RandomPruner(density=0.3, quota="proportional", selection="hardest",
                                   random_state=0).fit(X, y)
    assert X_kept.shape[0] == y_kept.shape[0] == round(0.3 * y.size)
    assert pruner.class_counts_ == hardest.class_counts_
    np.testing.assert_array_equal(pruner.scores_, hardest.scores_)
    assert not np.array_equal(pruner.sample_indices_, hardest.sample_indices_)

    pruner = skprune.RandomPruner(density=0.3, selection=selection, random_state=0)
    X_kept, y_kept = pruner.fit_resample(X, y)
    assert y_kept.shape[0] == 30 and set(y_kept) == {0, 1, 2}


class CountTrainings(Callback):
    """Counts the query trainings of any clone of the net it is attached to."""

    trainings = 0

    def on_train_begin(self, net, **kwargs):
        CountTrainings.trainings += 1


def test_changing_selection_reuses_cached_scores(digits):
    X, y = digits
    X, y = X[:600], y[:600]
    clear_process_cache()
    CountTrainings.trainings = 0
    try:
        def pruner(selection):
            net = make_tiny_net(max_epochs=1, callbacks=[("count", CountTrainings())])
            return skprune.EL2NPruner(net, density=0.4, quota="proportional", n_runs=1,
                                      selection=selection, random_state=0)

        hardest = pruner("hardest").fit(X, y)
        offset = pruner(OffsetWindow(0.1)).fit(X, y)
        assert CountTrainings.trainings == 1
        np.testing.assert_array_equal(hardest.scores_, offset.scores_)
        assert hardest.class_counts_ == offset.class_counts_
        assert not np.array_equal(hardest.sample_indices_, offset.sample_indices_)
        coverage = offset.set_params(selection="coverage").fit(X, y)
        assert CountTrainings.trainings == 1
        assert coverage.sample_indices_.size == round(0.4 * 600)
    finally:
        clear_process_cache()


def test_unsigned_and_boolean_scores_rank_as_numbers():
    rng = np.random.RandomState(0)
    np.testing.assert_array_equal(rank_by_score(np.array([0, 3, 1, 2], np.uint8), rng),
                                  [1, 3, 2, 0])
    np.testing.assert_array_equal(rank_by_score(np.array([False, True]), rng), [1, 0])
