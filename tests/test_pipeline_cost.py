"""The pipeline-cost benchmark: ratios to one plain training, measured in fresh processes."""

import pytest

from benchmarks import pipeline_cost


def test_one_configuration_measures_every_stage():
    plain = pipeline_cost.measure("plain", "none", "digits")
    assert plain["plain"] > 0
    shared = pipeline_cost.measure("random", "metriq-validation", "digits")
    assert shared["scoring"] > 0 and shared["final"] > 0 and shared["memory"] >= 0


@pytest.mark.slow
def test_table_from_fresh_processes(capsys):
    assert pipeline_cost.main(["--strategies", "random", "--quotas", "none", "--repeats",
                               "1", "--dataset", "digits"]) == 0
    table = capsys.readouterr().out
    assert "| random" in table and "| none" in table
