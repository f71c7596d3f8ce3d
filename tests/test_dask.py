"""Grid searches over pruner pipelines run on a dask cluster."""

import joblib
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV

from skprune import ClassRecallScorer, RandomPruner, make_pipeline

distributed = pytest.importorskip("dask.distributed")


@pytest.mark.slow
def test_dask_cluster_gives_the_same_search_as_one_process(digits, tmp_path):
    X, y = digits
    pipe = make_pipeline(
        RandomPruner(LogisticRegression(max_iter=200), random_state=0, memory=tmp_path),
        LogisticRegression(max_iter=200),
    )
    grid = {"randompruner__density": [0.1, 0.3], "randompruner__quota": [None, "metriq"]}
    search = GridSearchCV(pipe, grid, cv=2, scoring=ClassRecallScorer("worst"))
    local = search.fit(X, y)

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        with distributed.Client(cluster):
            with joblib.parallel_config(backend="dask"):
                remote = GridSearchCV(pipe, grid, cv=2, scoring=ClassRecallScorer("worst"),
                                      n_jobs=-1).fit(X, y)
    assert remote.best_params_ == local.best_params_
    assert remote.cv_results_["mean_test_score"] == pytest.approx(
        local.cv_results_["mean_test_score"]
    )
