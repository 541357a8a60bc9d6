"""An unknown experiment lists the ones that exist (issue 17 item 3), on a real sqlite MLflow store."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from budget.cli import main

pytest.importorskip("mlflow")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    from mlflow.tracking import MlflowClient

    folder = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    for name in ("shakespeare-sweep", "tiny-sweep"):
        client.create_experiment(name, artifact_location=str(folder / name))
    return uri


@pytest.mark.parametrize("args", [
    ["fit", "--experiment", "shakespear-sweep"],
    ["plan", "--flops", "1e21", "--gpu", "h100", "--calibrate", "shakespear-sweep"],
])
def test_unknown_experiment_lists_the_existing_ones(store, args):
    result = CliRunner().invoke(main, [*args, "--tracking-uri", store])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "experiment 'shakespear-sweep' not found" in lines[0]
    assert "it has 'shakespeare-sweep', 'tiny-sweep'" in lines[0]
