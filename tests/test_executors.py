"""One engine, three executors, real parts: the smoke sweep through in-process, a process pool and
a local Ray cluster gives the same results; a lost Ray worker is retried as the point's next
attempt; a SIGKILLed driver's runs are closed by the next sweep in the experiment; a sweep whose
every point failed leaves its parent FAILED, and resuming it drops that failure."""

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from experiments.sweeps.executors import MAX_RETRIES
from experiments.sweeps.point_run import LOST
from experiments.sweeps.sweep import SweepSpec, run_sweep
from experiments.tracking import names
from experiments.training.train import train_run

pytestmark = pytest.mark.slow  # trains real models (seconds each)

REPO = Path(__file__).resolve().parent.parent
NOT_COMPARED = ("run_id", "node", "experiment_id", "parent_run_id", "tracking_uri",
                "explicit_uri", "workers", "executor",  # ids, hosts and where it ran
                "peak_flops_per_s", "estimated_seconds")  # timings: the measured matmul peak


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """One local Ray cluster for the module (`address="local"`: never one already running)."""
    import ray

    mp = pytest.MonkeyPatch()
    mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
    ray.init(address="local", num_cpus=2, object_store_memory=128 * 1024 * 1024,
             include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
    mp.undo()


def comparable(result):
    out = result.to_dict()
    for key in NOT_COMPARED:
        out.pop(key, None)
    out["runs"] = [{k: v for k, v in r.items() if k not in NOT_COMPARED} for r in out["runs"]]
    return out


@pytest.mark.parametrize("executor", ["local", "pool", "ray"])
def test_the_smoke_sweep_is_the_same_under_every_executor(executor, smoke_sweep, tmp_path,
                                                          request):
    """Same points, sizes, tokens, losses, seed noise and units; only ids and hosts differ. The
    in-process result is the session's shared smoke sweep."""
    if executor == "ray":
        request.getfixturevalue("ray_cluster")
    if executor == "local":
        result = smoke_sweep.result
    else:
        spec = SweepSpec(preset="smoke", experiment=smoke_sweep.experiment, threads=1,
                         tracking_uri=f"sqlite:///{tmp_path}/mlflow.db", executor=executor,
                         workers=2 if executor == "pool" else None)
        result = run_sweep(spec, progress=False)
        assert result.executor == executor
    assert all(r.status == "FINISHED" for r in result.runs)
    mine, local = comparable(result), comparable(smoke_sweep.result)
    # the autotuner picks each shape's execution (fused AdamW or not) by timing it on the spot,
    # which moves the float rounding: losses agree to 1e-3, not to the last bit
    losses = [[r.pop("val_loss") for r in x["runs"]] for x in (mine, local)]
    assert losses[0] == pytest.approx(losses[1], rel=1e-3)
    noise = [x.pop("seed_noise") for x in (mine, local)]
    assert noise[0] == (pytest.approx(noise[1], rel=1e-2) if noise[1] else None)
    assert mine == local


def test_a_sweep_resumes_under_another_executor(smoke_sweep):
    """One sweep identity: the session's in-process sweep, run again on the process pool, finds
    its own parent and trains nothing."""
    spec = SweepSpec(preset="smoke", experiment=smoke_sweep.experiment, threads=1,
                     tracking_uri=smoke_sweep.uri, executor="pool", workers=2)
    again = run_sweep(spec, progress=False)
    assert again.parent_run_id == smoke_sweep.result.parent_run_id
    assert all(r.skipped for r in again.runs)
    assert [r.run_id for r in again.runs] == [r.run_id for r in smoke_sweep.result.runs]


def test_a_lost_ray_worker_is_retried_as_the_next_attempt(ray_cluster, tmp_path):
    """The worker training the point dies (os._exit) on its first attempt: Ray retries the task,
    the retry closes the lost attempt KILLED with the reason and trains attempt 2 to FINISHED."""
    marker = tmp_path / "died-once"

    def dies_once(config, *args, **kwargs):
        if not marker.exists():
            marker.write_text("x")
            os._exit(1)
        return train_run(config, *args, **kwargs)

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    spec = SweepSpec(preset="smoke", budgets=(3e9,), points=1, experiment="lost",
                     tracking_uri=uri, threads=1, executor="ray")
    result = run_sweep(spec, progress=False, train=dies_once)
    assert [r.status for r in result.runs] == ["FINISHED"]
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("lost")
    points = client.search_runs([exp.experiment_id], f"tags.`{names.ROLE}` = 'point'")
    by_attempt = {r.data.tags[names.ATTEMPT]: r for r in points}
    assert set(by_attempt) == {"1", "2"} and MAX_RETRIES >= 1
    assert by_attempt["1"].info.status == "KILLED"
    assert by_attempt["1"].data.tags[names.FAILURE] == LOST
    assert by_attempt["2"].info.status == "FINISHED"
    assert by_attempt["2"].info.run_id == result.runs[0].run_id


def test_every_point_failed_leaves_the_parent_failed_and_a_resume_drops_it(tmp_path):
    """A sweep (named with a `$`, which matplotlib would read as mathtext) whose every point
    fails: the parent ends FAILED with the reason. Resumed with real training: FINISHED, the old
    failure tag gone, the IsoFLOP figure, the per-budget table and its metrics on the parent."""
    def fails(config, *args, **kwargs):
        raise RuntimeError("out of memory")

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    spec = SweepSpec(preset="smoke", budgets=(3e9,), points=2, experiment="cost $5 sweep",
                     tracking_uri=uri, threads=1, executor="local")
    first = run_sweep(spec, progress=False, train=fails)
    client = MlflowClient(uri)
    parent = client.get_run(first.parent_run_id)
    assert [r.status for r in first.runs] == ["FAILED", "FAILED"]
    assert parent.info.status == "FAILED"
    assert parent.data.tags[names.FAILURE] == "no point finished (2 failed)"
    again = run_sweep(spec, progress=False)
    parent = client.get_run(again.parent_run_id)
    assert again.parent_run_id == first.parent_run_id and parent.info.status == "FINISHED"
    assert names.FAILURE not in parent.data.tags
    assert {names.ISOFLOP_PNG, names.BEST_TABLE_JSON} <= \
        {a.path for a in client.list_artifacts(parent.info.run_id)}
    best = min(again.runs, key=lambda r: r.val_loss)
    assert parent.data.metrics[names.BEST_LOSS] == pytest.approx(best.val_loss)
    assert parent.data.metrics[names.BEST_PARAMS] == best.params
    point = client.get_run(best.run_id)
    assert point.data.params[names.LOSS_UNIT_PARAM] == "nats per byte"
    assert {"flops_budget", "params", "tokens"} <= set(point.data.params)


DRIVER = textwrap.dedent("""
    import sys, time
    from experiments.sweeps.sweep import SweepSpec, run_sweep

    def slow(config, *args, **kwargs):
        time.sleep(600)

    run_sweep(SweepSpec(preset="smoke", budgets=(3e9,), points=1, experiment="killed",
                        tracking_uri=sys.argv[1], threads=1, executor="local"),
              progress=False, train=slow)
""")


def test_a_sigkilled_drivers_runs_are_closed_by_the_next_sweep_in_the_experiment(tmp_path):
    """SIGKILL leaves the parent and its point RUNNING; the next sweep of any spec in that
    experiment closes both KILLED with the reason (their process is gone), before it starts."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    env = {**os.environ, "PYTHONPATH": str(REPO), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, uri], env=env)
    client = MlflowClient(uri)
    deadline = time.monotonic() + 120
    points = []
    while time.monotonic() < deadline and not points:
        time.sleep(1)
        exp = client.get_experiment_by_name("killed") if (tmp_path / "mlflow.db").exists() \
            else None
        if exp is not None:
            points = client.search_runs([exp.experiment_id], f"tags.`{names.ROLE}` = 'point'")
    driver.kill()
    driver.wait()
    assert points, "the driver never started its point"
    running = client.search_runs([exp.experiment_id], "attributes.status = 'RUNNING'")
    assert len(running) == 2  # the parent and the point, left behind

    def fails(config, *args, **kwargs):
        raise RuntimeError("not trained")

    other = SweepSpec(preset="smoke", budgets=(4e9,), points=1, experiment="killed",
                      tracking_uri=uri, threads=1, executor="local")
    run_sweep(other, progress=False, train=fails)
    for run in running:
        closed = client.get_run(run.info.run_id)
        assert closed.info.status == "KILLED"
        reason = closed.data.tags[names.FAILURE]
        assert reason.startswith(f"stale: its process ({os.uname().nodename}:{driver.pid})")
    assert not client.search_runs([exp.experiment_id], "attributes.status = 'RUNNING'")


@pytest.mark.parametrize("address", ["127.0.0.1:1", "10.255.255.1:6379"])
def test_an_unreachable_ray_address_is_one_line_in_bounded_time(address, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    start = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "budget", "sweep", "--preset", "smoke",
                          "--executor", "ray", "--ray-address", address, "--tracking-uri",
                          f"sqlite:///{tmp_path}/mlflow.db"], capture_output=True, text=True,
                         env=env, timeout=120)
    assert time.monotonic() - start < 60
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    # a closed port: "cannot reach" within 5 s; a port that answers but is no Ray cluster (this
    # machine's network answers any address): "cannot join", once Ray's client gives up
    assert len(lines) == 1 and lines[0].startswith(
        (f"Error: cannot reach the Ray cluster at --ray-address {address}",
         f"Error: cannot join the Ray cluster at --ray-address {address}")), out.stderr

