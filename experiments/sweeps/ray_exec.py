"""The Ray executor (`budget sweep --executor ray [--ray-address ADDR]`): each point a Ray task.

What Ray already provides is used, not rewritten: a task asks for `--threads` CPUs (1 unless
told) or one GPU and Ray places it; a task whose worker process or node dies is retried by Ray
(`max_retries=MAX_RETRIES`, system failures only: `retry_exceptions=False`, since a training
error is the point's FAILED, not a reason to train again). Retries are safe because a point's
attempts are idempotent: the retried task runs the same submission, and the point runner closes
the lost attempt's run KILLED with the reason before it trains attempt k + 1
(`experiments.sweeps.point_run`). When Ray gives up (`WorkerCrashedError`, `NodeDiedError`,
`OutOfMemoryError` after the retries) the point's runs end KILLED with Ray's reason. Ray Tune is
not used: its trial retries restore from checkpoints into a new trial and own the run lifecycle,
while a sweep point must stay one run in the sweep's MLflow parent under the one writer, and the
adaptive schedule decides the next points from finished ones, which plain tasks give directly.

Without `--ray-address` (or RAY_ADDRESS) the driver starts its own cluster with
`address="local"` (never joining one already running on the machine, whose resources would refuse
`num_cpus`). An address is checked for a listening port first, so an unreachable one is one line
within `CONNECT_TIMEOUT_S`. Tasks carry a `runtime_env`: the driver's own packages
(`py_modules`, joined clusters) and the pinned versions of torch, mlflow and numpy, checked in
the task, so a node whose environment differs fails the point with one line naming the package.

Ray 2.60 pitfalls handled: a driver joining a cluster with token auth needs RAY_AUTH_MODE=token
beside RAY_AUTH_TOKEN, set before `ray` is imported; the in-process cluster gets an explicit
object store size (Ray's default takes 30% of RAM and warns on a small /dev/shm); MLflow's "View
run" lines are suppressed in workers.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any, Callable
from urllib.parse import urlsplit

from experiments.errors import SweepError
from experiments.sweeps.executors import GAVE_UP, MAX_RETRIES, close_submission
from experiments.sweeps.point_run import NODE_ENV, PointJob, PointOutcome, run_point
from experiments.sweeps.points import failure_reason

OBJECT_STORE_BYTES = 256 * 1024 * 1024  # tasks pass a job in and a small outcome back
WAIT_S = 1.0  # ray.get polls this often, so Ctrl-C and SIGTERM reach Python between waits
CONNECT_TIMEOUT_S = 5.0
WORKER_ENV = {"MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}
PINNED = ("torch", "mlflow", "numpy")  # what a task's environment must match the driver's in
# a basic-auth server's client credentials travel as task arguments (a job's runtime_env is shown
# on Ray's dashboard) and are set in the worker's environment only for the task
CREDENTIAL_ENV = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")


def auth_env() -> None:
    """RAY_AUTH_MODE=token when only RAY_AUTH_TOKEN(_PATH) is given: Ray sends the token only in
    token mode, and reads the mode when `ray` is imported, so this runs before that import."""
    if not (os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")):
        return
    if "RAY_AUTH_MODE" in os.environ:
        return
    if "ray" in sys.modules:
        raise SweepError("RAY_AUTH_TOKEN is set but RAY_AUTH_MODE is not, and Ray is already "
                         "imported; export RAY_AUTH_MODE=token before starting")
    os.environ["RAY_AUTH_MODE"] = "token"


def pinned_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in PINNED:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def check_reachable(address: str) -> None:
    """host:port (or ray://host:port) must accept a TCP connection within CONNECT_TIMEOUT_S."""
    if address in ("auto", "local"):
        return
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host, port = None, None
    if not host or not port:
        raise SweepError(f"--ray-address {address!r} is not host:port (e.g. 127.0.0.1:6379) "
                         "or ray://host:port")
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise SweepError(f"cannot reach the Ray cluster at --ray-address {address}: "
                         f"{exc.strerror or exc} (within {CONNECT_TIMEOUT_S:g} s)") from None


def connect(address: str | None, *, quiet: bool = True) -> bool:
    """Join the cluster at `address` (or RAY_ADDRESS), else start a cluster of this process on
    this machine's cores; True when this call started Ray (the caller shuts it down)."""
    if "ray" in sys.modules and sys.modules["ray"].is_initialized():
        return False
    auth_env()
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address is not None:
        check_reachable(address)
    import ray

    env = {"env_vars": dict(WORKER_ENV)}
    common: dict[str, Any] = {"log_to_driver": not quiet, "logging_level": logging.WARNING}
    if address is None:
        ray.init(address="local", num_cpus=os.cpu_count() or 1, runtime_env=env,
                 object_store_memory=OBJECT_STORE_BYTES, include_dashboard=False, **common)
        return True
    # the driver's own budget, experiments and fits packages travel to every node (Ray caches
    # them by content), so workers run the code that designed the schedule
    try:
        with _native_stderr_quiet():  # Ray's C++ client logs each failed GCS call to fd 2
            ray.init(address=address, runtime_env={**env, "py_modules": _own_packages()},
                     **common)
    except Exception as exc:  # ConnectionError, auth failures, version mismatches
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise SweepError(f"cannot join the Ray cluster at --ray-address {address}: {first}; a "
                         "cluster with token auth needs RAY_AUTH_TOKEN (and RAY_AUTH_MODE=token)"
                         ) from None
    return True


@contextlib.contextmanager
def _native_stderr_quiet() -> Iterator[None]:
    """File descriptor 2 sent to a temporary file while Ray's native client connects (a port
    that answers but is no Ray GCS gets a log line per retry); put back afterwards."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _own_packages() -> list[Any]:
    import budget
    import experiments
    import fits

    return [budget, experiments, fits]


def _task(job: PointJob, train: Any, credentials: dict[str, str],
          pins: dict[str, str]) -> PointOutcome:
    """One point in a Ray worker (see the module docstring)."""
    import ray

    os.environ.update(WORKER_ENV)
    os.environ.update(credentials)
    context = ray.get_runtime_context()
    os.environ[NODE_ENV] = f"{ray.util.get_node_ip_address()}/{context.get_node_id()[:6]}"
    here = pinned_versions()
    wrong = [f"{k} {here.get(k, 'missing')} (driver {v})" for k, v in pins.items()
             if here.get(k) != v]
    if wrong:
        raise SweepError(f"this node's packages differ from the driver's: {', '.join(wrong)}")
    return run_point(job, train)


class _RayPending:
    def __init__(self, ref: Any, job: PointJob) -> None:
        self.ref, self.job = ref, job

    def result(self) -> PointOutcome:
        import ray
        from ray.exceptions import GetTimeoutError, RayError, RayTaskError, TaskCancelledError

        while True:
            try:
                return ray.get(self.ref, timeout=WAIT_S)  # type: ignore[no-any-return]
            except GetTimeoutError:
                continue
            except RayTaskError as exc:  # the runner raised outside the training
                cause = exc.cause if exc.cause is not None else exc
                return close_submission(self.job, failure_reason(cause), "FAILED")
            except TaskCancelledError:
                return close_submission(self.job, "interrupted (its task was cancelled)",
                                        "KILLED")
            except RayError as exc:  # worker or node lost, out of memory: Ray gave up
                reason = GAVE_UP.format(n=MAX_RETRIES + 1, r=MAX_RETRIES)
                return close_submission(self.job, f"{reason}: ray: {failure_reason(exc)}",
                                        "KILLED")


class RayExecutor:
    """Points as Ray tasks with CPU/GPU resources and Ray's retries on worker loss."""

    name = "ray"

    def __init__(self, address: str | None, threads: int | None, device: str,
                 train: Callable[..., Any] | None = None, quiet: bool = True) -> None:
        import ray

        self.started = connect(address, quiet=quiet)
        self.train, self.refs = train, []  # type: ignore[var-annotated]
        cpus = float(threads or 1)
        has_gpu = ray.cluster_resources().get("GPU", 0) > 0
        gpus = 1.0 if device == "cuda" or (device == "auto" and has_gpu) else 0.0
        self.remote = ray.remote(_task).options(  # type: ignore[call-overload]
            num_cpus=cpus, num_gpus=gpus, max_retries=MAX_RETRIES, retry_exceptions=False)
        self.slots = max(1, self.free_slots(cpus, gpus))
        self.credentials = {k: os.environ[k] for k in CREDENTIAL_ENV if os.environ.get(k)}
        self.pins = pinned_versions()

    @staticmethod
    def free_slots(cpus: float, gpus: float) -> int:
        import ray

        total = 0
        for node in ray.nodes():
            if node.get("Alive"):
                have = node.get("Resources", {})
                n = int(have.get("CPU", 0) // max(cpus, 1e-9))
                total += min(n, int(have.get("GPU", 0) // gpus)) if gpus else n
        return total

    def check_store(self, uri: str) -> None:
        """A sqlite store serves one host: a cluster whose nodes sit on several hosts needs a
        tracking server (nodes of one host, as in a test cluster on 127.0.0.1, share the file)."""
        import ray

        hosts = {n.get("NodeManagerAddress") for n in ray.nodes() if n.get("Alive")}
        if uri.startswith("sqlite:") and len(hosts) > 1:
            raise SweepError("a multi-node Ray cluster needs a tracking server every node "
                             "reaches (budget server start; --tracking-uri http://...), not a "
                             "sqlite file")

    def submit(self, job: PointJob) -> _RayPending:
        ref = self.remote.remote(job, self.train, self.credentials, self.pins)
        self.refs.append(ref)
        return _RayPending(ref, job)

    def cancel(self) -> None:
        import ray

        for ref in self.refs:
            ray.cancel(ref, force=True)
        time.sleep(0.5)

    def close(self) -> None:
        import ray

        if self.started:
            ray.shutdown()
