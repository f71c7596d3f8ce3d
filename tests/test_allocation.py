"""Properties of the water-filling allocator (Algorithm 1 of arXiv 2404.05579)."""

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from skprune import allocate_class_counts


@st.composite
def allocation_cases(draw):
    n_classes = draw(st.integers(2, 30))
    # Mix of tiny and large classes so that many saturate.
    sizes = draw(st.lists(st.integers(1, 3000), min_size=n_classes, max_size=n_classes))
    weights = draw(
        st.lists(
            st.one_of(st.just(0.0), st.floats(1e-3, 1.0), st.floats(1.0, 1e3)),
            min_size=n_classes,
            max_size=n_classes,
        )
    )
    n_keep = draw(st.integers(n_classes, sum(sizes)))
    return np.array(sizes), np.array(weights), n_keep


# derandomize: CI runs the same examples every time (a failure reproduces).
@settings(max_examples=300, deadline=None, derandomize=True)
@given(allocation_cases())
def test_total_is_exact_and_bounds_hold(case):
    sizes, weights, n_keep = case
    counts = allocate_class_counts(sizes, weights, n_keep)
    assert counts.sum() == n_keep
    assert np.all(counts >= 1)
    assert np.all(counts <= sizes)


# derandomize: CI runs the same examples every time (a failure reproduces).
@settings(max_examples=300, deadline=None, derandomize=True)
@given(allocation_cases())
# Rounding at the floor classes moves the mean of the free ones' densities.
@example((np.array([1, 1, 1, 1, 1, 751, 1, 124, 1, 1, 6, 623, 1, 2, 2, 1, 185, 1, 2, 7,
                    347, 1, 2904, 637, 379, 557, 26, 13]),
          np.array([0, 0, 0, 0, 0, 0.211379971, 1e-3, 0.75, 58, 0, 0, 122, 0, 1, 31, 0,
                    0.859375, 0, 0, 0, 0.859375, 63, 16, 0, 0.65625, 62, 0, 0]),
          1965))
def test_unsaturated_densities_follow_weights(case):
    sizes, weights, n_keep = case
    if not np.any(weights > 0):
        weights = np.ones_like(weights)
    counts = allocate_class_counts(sizes, weights, n_keep)
    # Classes strictly between their floor (1) and their size are on the
    # common line counts ~ lam * N_k * w_k, up to one sample of rounding.
    free = (counts > 1) & (counts < sizes) & (weights > 0)
    if free.sum() < 2:
        return
    # Some lam puts every free class within one sample of lam * N_k * w_k:
    # the highest lower end is at most the lowest upper end. (lam estimated
    # from the rounded counts is not that lam: classes kept at their floor
    # carry rounding too.)
    mass = sizes[free] * weights[free]
    lam_low = np.max((counts[free] - 1) / mass)
    lam_high = np.min((counts[free] + 1) / mass)
    assert lam_low <= lam_high * (1 + 1e-9)
    # A saturated class has a density weight at least that of the free ones
    # (it would have needed more than all of its samples).
    saturated = (counts == sizes) & (sizes > 1) & (weights > 0)
    if saturated.any():
        assert np.all(lam_high * sizes[saturated] * weights[saturated]
                      >= sizes[saturated] - 1 - 1e-9)


def test_paper_imbalanced_example():
    # N = (5000, 2000), recall (0.8, 0.6), d = 0.3: densities proportional to
    # error rates, not counts proportional to them (which gives 700 / 1400).
    counts = allocate_class_counts([5000, 2000], [1 - 0.8, 1 - 0.6], round(0.3 * 7000))
    np.testing.assert_array_equal(counts, [1167, 933])


def test_saturated_class_excess_is_redistributed():
    # Class 0 would need density 2: it is capped at its 10 samples and the
    # remaining budget goes to classes 1 and 2 in proportion to N_k * w_k.
    counts = allocate_class_counts([10, 100, 100], [10.0, 1.0, 1.0], 60)
    np.testing.assert_array_equal(counts, [10, 25, 25])


def test_all_zero_weights_give_uniform_density():
    counts = allocate_class_counts([100, 300], [0.0, 0.0], 200)
    np.testing.assert_array_equal(counts, [50, 150])


def test_zero_weight_classes_keep_one_until_others_are_full():
    np.testing.assert_array_equal(allocate_class_counts([50, 50], [0.0, 1.0], 40), [1, 39])
    np.testing.assert_array_equal(allocate_class_counts([50, 50], [0.0, 1.0], 70), [20, 50])


@pytest.mark.parametrize(
    "sizes, weights, n_keep, match",
    [
        ([10, 10], [1.0, -1.0], 5, "non-negative"),
        ([10, 10], [1.0, np.nan], 5, "finite"),
        ([10, 10], [1.0, 1.0], 1, "n_classes <= n_keep"),
        ([10, 10], [1.0, 1.0], 21, "n_keep <= n_samples"),
        ([10, 10, 10], [1.0, 1.0], 5, "same length"),
    ],
)
def test_bad_input(sizes, weights, n_keep, match):
    with pytest.raises(ValueError, match=match):
        allocate_class_counts(sizes, weights, n_keep)


def test_negligible_weights_behave_like_zero():
    np.testing.assert_array_equal(allocate_class_counts([100, 100], [1e-320, 1.0], 150), [50, 100])
