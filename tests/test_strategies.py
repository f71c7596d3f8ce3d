"""CoreSet, prototypes, uncertainty, AUM and precomputed scores."""

import itertools

import numpy as np
import pytest
import torch
from conftest import make_tiny_net
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV
from skorch import NeuralNetClassifier

from skprune import (
    AUMPruner,
    ClassRecallScorer,
    CoreSetPruner,
    EL2NPruner,
    PrototypePruner,
    ScorePruner,
    UncertaintyPruner,
    make_pipeline,
)
from skprune.models import MLP
from skprune.scores import k_center_order, prototype_distances, uncertainty


def covering_radius(points, centers):
    distances = np.linalg.norm(points[:, None, :] - points[None, centers, :], axis=2)
    return distances.min(axis=1).max()


def plain_greedy_k_center(points, k):
    """Greedy k-center written out directly, for comparison."""
    first = int(np.argmin(((points - points.mean(0)) ** 2).sum(1)))
    centers = [first]
    while len(centers) < k:
        distances = [min(((p - points[c]) ** 2).sum() for c in centers) for p in points]
        for c in centers:
            distances[c] = -1
        centers.append(int(np.argmax(distances)))
    return centers


@pytest.mark.parametrize("seed", range(5))
def test_k_center_is_within_twice_the_optimal_radius_and_matches_the_direct_algorithm(seed):
    points = np.random.RandomState(seed).normal(size=(11, 2)).astype(np.float32)
    order = k_center_order(points)
    assert sorted(order.tolist()) == list(range(11))
    for k in (1, 2, 3, 4):
        greedy = covering_radius(points, order[:k])
        optimum = min(covering_radius(points, list(centers))
                      for centers in itertools.combinations(range(11), k))
        assert greedy <= 2 * optimum + 1e-6
        assert order[:k].tolist() == plain_greedy_k_center(points, k)
        assert greedy == pytest.approx(covering_radius(points, plain_greedy_k_center(points, k)))


def test_uncertainty_measures_match_hand_computations():
    proba = np.array([[0.7, 0.2, 0.1], [0.4, 0.4, 0.2], [1.0, 0.0, 0.0]])
    np.testing.assert_allclose(uncertainty(proba, "least_confidence"), [0.3, 0.6, 0.0])
    np.testing.assert_allclose(uncertainty(proba, "margin"), [0.5, 1.0, 0.0])
    entropy = [-(0.7 * np.log(0.7) + 0.2 * np.log(0.2) + 0.1 * np.log(0.1)),
               -(2 * 0.4 * np.log(0.4) + 0.2 * np.log(0.2)), 0.0]
    np.testing.assert_allclose(uncertainty(proba, "entropy"), entropy)
    with pytest.raises(ValueError, match="measure"):
        uncertainty(proba, "variance")


def test_prototype_distances_by_hand():
    features = np.array([[0.0, 0.0], [4.0, 0.0], [1.0, 1.0], [3.0, 3.0]])
    np.testing.assert_allclose(prototype_distances(features, np.array([0, 0, 1, 1])),
                               [2.0, 2.0, np.sqrt(2), np.sqrt(2)])


def mlp_net(**params):
    defaults = dict(module__in_features=64, module__hidden=(32,),
                    criterion=torch.nn.CrossEntropyLoss, lr=0.5, max_epochs=3,
                    train_split=None, verbose=0)
    return NeuralNetClassifier(MLP, **{**defaults, **params})


def test_coreset_scopes(digits):
    X, y = digits
    X, y = X[:600], y[:600]
    within = CoreSetPruner(mlp_net(), scope="class", density=0.3, random_state=0).fit(X, y)
    # Within classes, pick positions are fractions of the class: without a
    # quota every class keeps about 30%.
    densities = np.array(list(within.class_densities_.values()))
    assert np.all(np.abs(densities - 0.3) < 0.03)
    assert within.scores_.max() == 1.0 and np.count_nonzero(within.scores_ == 1.0) == 10
    overall = CoreSetPruner(mlp_net(), density=0.3, random_state=0).fit(X, y)
    assert overall.scope == "all" and np.count_nonzero(overall.scores_ == 1.0) == 1
    assert overall.run_scores_.shape == (1, 600)


class LinearHead(torch.nn.Module):
    """One Linear layer: the embedding CoreSet reads (its input) is the data itself."""

    def __init__(self, n_features=2, n_classes=2):
        super().__init__()
        self.head = torch.nn.Linear(n_features, n_classes)

    def forward(self, X):
        return self.head(X)


def test_coreset_default_keeps_the_global_k_center_set():
    # Class 0 spread over a square, class 1 (a quarter of the data) in one
    # tight spot: one global k-center covers the square and gives class 1 a
    # single centre, where per-class k-center would keep each class's share.
    rng = np.random.RandomState(0)
    X = np.vstack([rng.uniform(0, 100, size=(150, 2)),
                   50 + rng.uniform(0, 0.01, size=(50, 2))]).astype("float32")
    y = np.repeat([0, 1], [150, 50])
    net = NeuralNetClassifier(LinearHead, criterion=torch.nn.CrossEntropyLoss, lr=1e-4,
                              max_epochs=1, train_split=None, verbose=0)
    pruner = CoreSetPruner(net, density=0.5, random_state=0).fit(X, y)
    expected = np.sort(k_center_order(X)[:100])
    np.testing.assert_array_equal(pruner.sample_indices_, expected)
    assert pruner.class_counts_ == {0: 99, 1: 1}
    per_class = CoreSetPruner(net, density=0.5, scope="class", random_state=0).fit(X, y)
    assert per_class.class_counts_ == {0: 75, 1: 25}


def test_aum_ranks_mislabelled_samples_high(flipped_digits):
    X, y, flipped = flipped_digits
    pruner = AUMPruner(make_tiny_net(max_epochs=8), random_state=0).fit(X, y)
    assert roc_auc_score(flipped, pruner.scores_) > 0.9


def test_score_pruner_takes_arrays_and_functions(digits):
    X, y = digits
    given = np.arange(len(y), dtype=float)
    pruner = ScorePruner(given, density=0.25, random_state=0).fit(X, y)
    assert pruner.sample_indices_.min() >= len(y) - round(0.25 * len(y)) - 10
    easiest = ScorePruner(lambda X, y: X.sum(axis=1), density=0.5, selection="easiest",
                          quota="proportional", random_state=0).fit(X, y)
    kept = easiest.sample_indices_
    assert X[kept].sum(axis=1).mean() < X.sum(axis=1).mean()
    with pytest.raises(ValueError, match=r"one number per row, shape \(1797,\)"):
        ScorePruner(given[:-1], random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="needs scores"):
        ScorePruner(random_state=0).fit(X, y)


@pytest.mark.parametrize("make_pruner", [
    lambda: CoreSetPruner(mlp_net(max_epochs=1), random_state=0),
    lambda: PrototypePruner(mlp_net(max_epochs=1), random_state=0),
    lambda: UncertaintyPruner(mlp_net(max_epochs=1), measure="entropy", random_state=0),
    lambda: AUMPruner(mlp_net(max_epochs=2), random_state=0),
], ids=["coreset", "prototype", "uncertainty", "aum"])
def test_new_strategies_in_a_grid_search(digits, make_pruner):
    X, y = digits
    X, y = X[:400], y[:400]
    pruner = make_pruner()
    name = type(pruner).__name__.lower()
    pipe = make_pipeline(pruner, mlp_net(max_epochs=2))
    grid = {f"{name}__density": [0.3, 0.6], f"{name}__selection": ["hardest", "coverage"]}
    search = GridSearchCV(pipe, grid, cv=2, scoring=ClassRecallScorer("worst")).fit(X, y)
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))


def test_per_run_scores_are_exposed(digits):
    X, y = digits
    pruner = EL2NPruner(make_tiny_net(max_epochs=2), n_runs=3, random_state=0).fit(X, y)
    assert pruner.run_scores_.shape == (3, len(y))
    np.testing.assert_allclose(pruner.scores_, pruner.run_scores_.mean(axis=0))
