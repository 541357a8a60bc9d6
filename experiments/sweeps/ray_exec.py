"""Sweep points as Ray tasks (`budget sweep --executor ray [--ray-address ADDR]`).

The driver (the `budget sweep` process) creates each point's child run itself (parent, point,
attempt and config-hash tags; `experiments.sweeps.points.open_point`) just before it submits the task,
and hands the run id to the task, which trains and logs into that run through its own
`Tracker` on the same tracking URI (`points.train_point`). Tasks ask for `--threads` CPUs (1
unless told; torch uses exactly that many threads) or one GPU, and run with `max_retries=0`:
a retry is the sweep's business (re-running it re-does failed points, as in local mode), never
Ray's, because a retried task would train into a run that already ended. A task that raises
marks its run FAILED with the cause; a Ray error other than a task exception (worker killed,
node lost, out of memory) marks it FAILED with that error; runs still RUNNING when the sweep
ends (or on Ctrl-C, after the tasks are cancelled) are marked KILLED, since MLflow has no
heartbeat. At most as many tasks are in flight as the cluster has slots, so a run is RUNNING
only while a task trains it.

Ray 2.60 pitfalls handled: a driver joining a cluster with token auth needs RAY_AUTH_MODE=token
beside RAY_AUTH_TOKEN, set before `ray` is imported (done here when only the token is given;
measured: set after the import, the same token is refused); the in-process cluster gets an
explicit object store size (Ray's default takes 30% of RAM and warns on a small /dev/shm);
MLflow's "View run" lines are suppressed in workers.
"""

from __future__ import annotations

import heapq
import logging
import os
from collections import deque
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from experiments.errors import SweepError
from experiments.tracking.writer import close_running

if TYPE_CHECKING:
    from experiments.sweeps.sweep import PointResult, SweepSpec
    from experiments.sweeps.sweep_ray import _RunContext

OBJECT_STORE_BYTES = 256 * 1024 * 1024  # tasks pass a config in and a small dict back
WAIT_S = 1.0
WORKER_ENV = {"MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}
STILL_RUNNING = "still RUNNING when the sweep ended: its task never closed it"
# a basic-auth server's client credentials travel as task arguments (a job's runtime_env is shown
# on Ray's dashboard) and are set in the worker's environment only for the task
CREDENTIAL_ENV = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")


def auth_env() -> None:
    """RAY_AUTH_MODE=token when only RAY_AUTH_TOKEN(_PATH) is given: Ray sends the token only in
    token mode, and reads the mode when `ray` is imported, so this runs before that import."""
    import sys

    if not (os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")):
        return
    if "RAY_AUTH_MODE" in os.environ:
        return
    if "ray" in sys.modules:
        raise SweepError("RAY_AUTH_TOKEN is set but RAY_AUTH_MODE is not, and Ray is already "
                         "imported; export RAY_AUTH_MODE=token before starting")
    os.environ["RAY_AUTH_MODE"] = "token"


def connect(address: str | None, *, quiet: bool = True) -> bool:
    """Join the cluster at `address` (or RAY_ADDRESS), else start an in-process one on this
    machine's cores; True when this call started Ray (the caller shuts it down)."""
    import sys

    if "ray" in sys.modules and sys.modules["ray"].is_initialized():
        return False
    auth_env()
    import ray

    address = address or os.environ.get("RAY_ADDRESS") or None
    common: dict[str, Any] = {"log_to_driver": not quiet, "logging_level": logging.WARNING,
                              "runtime_env": {"env_vars": dict(WORKER_ENV)}}
    if address is None:
        ray.init(num_cpus=os.cpu_count() or 1, object_store_memory=OBJECT_STORE_BYTES,
                 include_dashboard=False, **common)
        return True
    # the driver's own budget, experiments and fits packages travel to every node (Ray caches
    # them by content), so workers run the code that designed the grid; torch and mlflow must
    # be installed there
    common["runtime_env"]["py_modules"] = _own_packages()
    try:
        ray.init(address=address, **common)
    except Exception as exc:  # ConnectionError, auth failures, version mismatches
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise SweepError(f"cannot join the Ray cluster at --ray-address {address}: {first}; a "
                         "cluster with token auth needs RAY_AUTH_TOKEN (and RAY_AUTH_MODE=token)"
                         ) from None
    return True


def _own_packages() -> list[Any]:
    import budget
    import experiments
    import fits

    return [budget, experiments, fits]


def task_resources(spec: "SweepSpec") -> dict[str, float]:
    """CPUs (--threads, 1 unless told) and one GPU for --device cuda (or auto on a GPU cluster)."""
    import ray

    cpus = float(spec.threads or 1)
    has_gpu = ray.cluster_resources().get("GPU", 0) > 0
    gpus = 1.0 if spec.device == "cuda" or (spec.device == "auto" and has_gpu) else 0.0
    return {"num_cpus": cpus, "num_gpus": gpus}


def node_slots(resources: dict[str, float]) -> list[str]:
    """One entry per task the alive nodes can run at once (a node's IP repeated)."""
    import ray

    slots = []
    for node in ray.nodes():
        if not node.get("Alive"):
            continue
        have = node.get("Resources", {})
        n = int(have.get("CPU", 0) // max(resources["num_cpus"], 1e-9))
        if resources["num_gpus"]:
            n = min(n, int(have.get("GPU", 0) // resources["num_gpus"]))
        slots += [str(node["NodeManagerAddress"])] * n
    return slots


def expected_nodes(spec: "SweepSpec", grid: list[Any]) -> list[str]:
    """For --dry-run: which node each point is expected to run on, by list scheduling the
    estimated times over the cluster's slots in grid order (Ray decides at run time)."""
    started = connect(spec.ray_address)
    import ray

    try:
        resources = task_resources(spec)
        slots = node_slots(resources)
        if not slots:
            raise SweepError(f"the Ray cluster has no node with {resources['num_cpus']:g} CPU(s)"
                             f"{' and a GPU' if resources['num_gpus'] else ''} free for a point")
        free = [(0.0, k, ip) for k, ip in enumerate(slots)]
        heapq.heapify(free)
        out = []
        for point in grid:
            at, k, ip = heapq.heappop(free)
            out.append(ip)
            heapq.heappush(free, (at + (point.estimated_seconds or 0.0), k, ip))
        return out
    finally:
        if started:
            ray.shutdown()


def _check_store(uri: str) -> None:
    import ray

    if uri.startswith("sqlite:") and len([n for n in ray.nodes() if n.get("Alive")]) > 1:
        raise SweepError("a multi-node Ray cluster needs a tracking server every node reaches "
                         "(budget server start; --tracking-uri http://...), not a sqlite file")


def run_points(context: "_RunContext", spec: "SweepSpec", todo: list[tuple[int, Any, str]],
               total: int) -> dict[int, "PointResult"]:
    """Train the points `todo` (index, point, config hash) as Ray tasks; index -> result."""
    started = connect(spec.ray_address, quiet=not context.progress)
    import ray

    tracker, opened = context.tracker, []
    try:
        _check_store(tracker.uri)
        resources = task_resources(spec)
        window = max(1, len(node_slots(resources)))
        remote = ray.remote(_train_task).options(max_retries=0, **resources)  # type: ignore[arg-type]
        credentials = {k: os.environ[k] for k in CREDENTIAL_ENV if os.environ.get(k)}
        queue = deque(todo)
        pending: dict[Any, tuple[int, Any, str]] = {}
        results: dict[int, PointResult] = {}
        try:
            while queue or pending:
                while queue and len(pending) < window:
                    i, point, h = queue.popleft()
                    run_id = context.open(point, h, f"{i}/{total}", "ray")
                    opened.append(run_id)
                    ref = remote.remote(_absolute(tracker.uri), run_id, asdict(point.config), spec.data,
                                        spec.device, int(resources["num_cpus"]), context.train,
                                        credentials)
                    pending[ref] = (i, point, run_id)
                # a timeout so Ctrl-C and SIGTERM reach Python between waits
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=WAIT_S)
                for ref in ready:
                    i, point, run_id = pending.pop(ref)
                    results[i] = _collect(ref, context, point, run_id, f"{i}/{total}")
        except KeyboardInterrupt:
            for ref in pending:
                ray.cancel(ref, force=True)
            close_running(tracker, opened, "interrupted (KeyboardInterrupt)")
            raise
        return results
    finally:
        close_running(tracker, opened, STILL_RUNNING)
        if started:
            ray.shutdown()


def _absolute(uri: str) -> str:
    """A relative sqlite path resolved here: workers run in other folders."""
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return "sqlite:///" + str(Path(uri[len("sqlite:///"):]).expanduser().resolve())
    return uri


def _collect(ref: Any, context: "_RunContext", point: Any, run_id: str,
             label: str) -> "PointResult":
    """The task's outcome; a task that raised, or a Ray failure, ends its run FAILED."""
    import ray
    from ray.exceptions import RayError, RayTaskError

    from experiments.sweeps.points import failure_reason
    from experiments.sweeps.sweep_ray import _point

    try:
        out = ray.get(ref)
    except RayTaskError as exc:  # the task raised outside the training (store, data...)
        reason = failure_reason(exc.cause) if exc.cause is not None else failure_reason(exc)
        out = _fail(context, run_id, reason)
    except RayError as exc:  # the worker or its node died, out of memory, cancelled
        out = _fail(context, run_id, "ray: " + failure_reason(exc))
    c = point.config
    if context.progress:
        where = f" on {out['node']}" if out.get("node") else ""
        loss = f", val loss {out['val_loss']:.4f}" if out.get("val_loss") is not None else ""
        why = f": {out['reason']}" if out.get("reason") else ""
        click.echo(f"sweep [{label}] C={c.flops_budget:.1e} N={c.params:,} {out['status']}"
                   f"{where}{loss}{why}", err=True)
    return _point(point, run_id=run_id, status=out["status"], val_loss=out.get("val_loss"),
                  reason=out.get("reason"), node=out.get("node"))


def _fail(context: "_RunContext", run_id: str, reason: str) -> dict[str, Any]:
    if context.tracker.status(run_id) == "RUNNING":
        context.tracker.fail_run(run_id, reason)
    return {"status": "FAILED", "reason": reason, "val_loss": None, "node": None}


@lru_cache(maxsize=2)
def _corpus(data: str | None) -> Any:
    from experiments.training.data import load_corpus

    return load_corpus(data)


def _train_task(uri: str, run_id: str, config: dict[str, Any], data: str | None, device: str,
                threads: int, train: Any, credentials: dict[str, str]) -> dict[str, Any]:
    """One point in a Ray worker: train into the driver's run `run_id`; the outcome as a dict."""
    os.environ.update(WORKER_ENV)
    os.environ.update(credentials)
    import ray
    import torch

    from experiments.sweeps.points import train_point
    from experiments.tracking.writer import Tracker
    from experiments.training.hardware import peak_for, resolve_device, training_dtype
    from experiments.training.train import TrainConfig

    torch.set_num_threads(threads)
    dev = resolve_device(device)
    dtype = training_dtype(dev)
    out = train_point(Tracker(uri), run_id, TrainConfig(**config), _corpus(data), device=dev,
                      dtype=dtype, peak=peak_for(dev, dtype), train=train, progress=False,
                      node=ray.util.get_node_ip_address())
    return out.to_dict()

