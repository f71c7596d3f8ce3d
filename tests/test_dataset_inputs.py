"""torch Datasets as pruner input: kept rows come back as a Subset, no copy."""

import numpy as np
import torch
from conftest import make_tiny_net

from skprune import EL2NPruner, ForgettingPruner, RandomPruner, make_pipeline


def test_dataset_returns_subset_without_copy(digits):
    X, y = digits
    features = torch.from_numpy(X)
    dataset = torch.utils.data.TensorDataset(features, torch.from_numpy(y))
    pruner = RandomPruner(density=0.3, quota="proportional", random_state=0)
    subset, y_kept = pruner.fit_resample(dataset, y)
    assert isinstance(subset, torch.utils.data.Subset)
    assert subset.dataset is dataset
    np.testing.assert_array_equal(subset.indices, pruner.sample_indices_)
    np.testing.assert_array_equal(y_kept, y[pruner.sample_indices_])
    # The rows of the subset are views of the original tensor's storage.
    assert dataset.tensors[0].data_ptr() == features.data_ptr()
    first_row = subset[0][0]
    assert first_row.untyped_storage().data_ptr() == features.untyped_storage().data_ptr()


def test_dataset_and_array_keep_the_same_rows(digits):
    X, y = digits
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    from_array = RandomPruner(density=0.4, quota="balanced", random_state=1).fit(X, y)
    from_dataset = RandomPruner(density=0.4, quota="balanced", random_state=1).fit(dataset, y)
    np.testing.assert_array_equal(from_array.sample_indices_, from_dataset.sample_indices_)


def test_skorch_net_trains_on_the_kept_subset(digits):
    X, y = digits
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    pipe = make_pipeline(RandomPruner(density=0.5, random_state=0), make_tiny_net(max_epochs=10))
    pipe.fit(dataset, y)
    assert pipe.score(X, y) > 0.8


def test_dataset_labels_that_are_not_positions_score_as_arrays_do(digits):
    # A fold without class 0, labels 1 .. 9: skorch trains on the Dataset's
    # own labels, which must mean the same outputs as the scored labels.
    X, y = digits
    X, y = X[y > 0], y[y > 0]
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    for pruner in (EL2NPruner, ForgettingPruner):
        from_array = pruner(make_tiny_net(max_epochs=2), random_state=0).fit(X, y).scores_
        from_dataset = pruner(make_tiny_net(max_epochs=2), random_state=0).fit(dataset, y)
        np.testing.assert_allclose(from_dataset.scores_, from_array, rtol=1e-6)
