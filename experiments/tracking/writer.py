"""The one MLflow writer (`Tracker`), store set-up, and the readers `budget fit --experiment` uses.

Everything the project writes to MLflow goes through `Tracker`, a thin wrapper around one
`MlflowClient` bound to one tracking URI: no fluent API (`mlflow.start_run`, `mlflow.log_*`) and
no global tracking URI (`mlflow.set_tracking_uri`) anywhere, so two stores in one process cannot
mix (the `./mlflow.db` bug of e282dfa) and a Ray task writes to exactly the run the driver made
for it. Run, tag, metric and artifact names live in `experiments.tracking.names`.

Store: `--tracking-uri`, else `MLFLOW_TRACKING_URI`, else the embedded default
`sqlite:///mlflow.db` in the working directory, with artifacts in `./mlartifacts`. The
experiment is created once, before any training (concurrent first creation of a sqlite store
fails). Runs carry tags `budget.role` (`sweep` for a parent, `point` for a child),
`budget.config_hash` and `budget.sweep_hash`. No credential is ever written: params and tags
pass through `redact` (user:password@ in a URI, keys naming a password, token or secret).

Readers (for issue 5):
- `sweep_runs_frame(experiment, tracking_uri=None)`: one row per FINISHED point (latest run per
  config hash) with columns `run_id`, `params` (total N), `params_non_embedding`, `tokens`
  (D trained), `flops` (the IsoFLOP budget C = 6 N D of the point), `loss` (final validation loss,
  nats per token), plus `flops_model` (FLOPs executed, attention and logits included),
  `n_layer`, `d_model`.
- `sweep_curves_frame(experiment, tracking_uri=None)`: the per-step training-loss curves in long
  form, columns `run_id`, `params`, `tokens` (seen so far), `flops` (6 N tokens), `loss`; for
  Chinchilla Approach 1 (lower envelope of loss over FLOPs).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from experiments.errors import SweepError
from experiments.tracking import names

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.tracking import MlflowClient

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"  # MLflow 3's own default store, in the CWD
ARTIFACT_DIR = "mlartifacts"
# kept importable here for the callers that read them from tracking
ROLE, CONFIG_HASH, SWEEP_HASH, FAILURE = names.ROLE, names.CONFIG_HASH, names.SWEEP_HASH, \
    names.FAILURE
EXPERIMENT_KIND, TRAINING_KIND = names.EXPERIMENT_KIND, names.TRAINING_KIND
HASH_EXCLUDE = ("code_version",)  # fields that do not change what a point measures
BATCH_LIMIT = 1000  # MLflow's log_batch takes at most 1000 metrics (100 params) per call
PARAM_BATCH = 100
# keys whose values are secrets (eval_tokens is not one: only auth/access/bearer tokens)
SECRET_KEY = re.compile(r"passw(or)?d|secret|credential|(api|access|private)[_-]?key|"
                        r"(auth|access|bearer|refresh)[_-]?token", re.IGNORECASE)
URI_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")
REDACTED = "[redacted]"


def resolve_tracking_uri(tracking_uri: str | None = None) -> str:
    """--tracking-uri, else MLFLOW_TRACKING_URI, else sqlite:///mlflow.db in the CWD."""
    return tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def run_user(uri: str = "") -> str:
    """Who runs it: the tracking server's sign-in name (MLFLOW_TRACKING_USERNAME or
    ~/.mlflow/credentials, else a user:password@ URI), else the local login; the run's user."""
    from urllib.parse import urlparse

    from mlflow.utils.credentials import read_mlflow_creds

    name = read_mlflow_creds().username or urlparse(uri).username
    if not name:
        import getpass

        try:
            name = getpass.getuser()
        except (KeyError, OSError):
            name = "unknown"
    return name


def redact(key: str, value: str) -> str:
    """A param or tag value with any credential removed: the value of a key that names a
    password, token or secret, and the user:password@ part of a URI (http://u:p@host -> http://host)."""
    if SECRET_KEY.search(key):
        return REDACTED
    return URI_USERINFO.sub(lambda m: m.group("scheme"), value)


def artifact_root(uri: str) -> str | None:
    """For a local sqlite store: `mlartifacts/` beside the database file (as a file URI)."""
    if not uri.startswith("sqlite:///"):
        return None
    db = Path(uri[len("sqlite:///"):]).expanduser().resolve()
    return (db.parent / ARTIFACT_DIR).as_uri()


class Tracker:
    """The one MLflow writer: an MlflowClient on one store, every write of the project.

    Values are written as MLflow stores them (params and tags as strings) after `redact`;
    metrics go in batches; a run ends with `end_run(run_id, status)`. MLflow's "View run ... at"
    lines (printed on stdout when a run against a server ends) are swallowed, so `--json` output
    and Ray workers' logs stay clean.
    """

    def __init__(self, tracking_uri: str, client: "MlflowClient | None" = None) -> None:
        from mlflow.tracking import MlflowClient

        self.uri = tracking_uri
        self.client = client or MlflowClient(tracking_uri=tracking_uri)

    def create_run(self, experiment_id: str, name: str, tags: Mapping[str, str],
                   parent: str | None = None) -> str:
        """A new RUNNING run (a child of `parent` when given); its id."""
        all_tags = {k: redact(k, str(v)) for k, v in tags.items()}
        all_tags.setdefault(names.MLFLOW_USER, run_user(self.uri))
        if parent:
            all_tags[names.PARENT_RUN] = parent
        return str(self.client.create_run(experiment_id, run_name=name, tags=all_tags).info.run_id)

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, redact(k, v if isinstance(v, str) else str(v))) for k, v in params.items()]
        for start in range(0, len(items), PARAM_BATCH):
            self.client.log_batch(run_id, params=items[start:start + PARAM_BATCH])

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        from mlflow.entities import RunTag

        items = [RunTag(k, redact(k, str(v))) for k, v in tags.items()]
        for start in range(0, len(items), PARAM_BATCH):
            self.client.log_batch(run_id, tags=items[start:start + PARAM_BATCH])

    def log_metrics(self, run_id: str, metrics: Mapping[str, float], step: int = 0) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.log_metric_batch(run_id, [Metric(k, float(v), now, step) for k, v in metrics.items()])

    def log_metric_batch(self, run_id: str, metrics: list[Any]) -> None:
        """mlflow.entities.Metric objects, in batches of at most 1000."""
        for start in range(0, len(metrics), BATCH_LIMIT):
            self.client.log_batch(run_id, metrics=metrics[start:start + BATCH_LIMIT])

    def log_dict(self, run_id: str, data: Mapping[str, Any], artifact_file: str) -> None:
        self.client.log_dict(run_id, dict(data), artifact_file)

    def log_figure(self, run_id: str, figure: Any, artifact_file: str) -> None:
        self.client.log_figure(run_id, figure, artifact_file)

    def log_artifact(self, run_id: str, path: str | Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(run_id, str(path), artifact_path)

    def log_artifacts(self, run_id: str, folder: str | Path, artifact_path: str | None = None) -> None:
        self.client.log_artifacts(run_id, str(folder), artifact_path)

    def log_dataset(self, run_id: str, dataset: Any, context: str = "training") -> None:
        """An mlflow.data Dataset as the run's input (what mlflow.log_input does, by client)."""
        from mlflow.entities import DatasetInput, InputTag
        from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

        entry = DatasetInput(dataset=dataset._to_mlflow_entity(),
                             tags=[InputTag(key=MLFLOW_DATASET_CONTEXT, value=context)])
        self.client.log_inputs(run_id, datasets=[entry])

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        self.client.set_experiment_tag(experiment_id, key, value)

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        """FINISHED, FAILED or KILLED; MLflow's "View run" lines go nowhere."""
        with contextlib.redirect_stdout(io.StringIO()):
            self.client.set_terminated(run_id, status=status)

    def reopen(self, run_id: str) -> None:
        """A finished run RUNNING again (a resumed sweep's parent)."""
        self.client.update_run(run_id, status="RUNNING")

    def fail_run(self, run_id: str, reason: str, status: str = "FAILED") -> None:
        """Record why (tag budget.failure_reason) and end the run FAILED (or KILLED)."""
        self.set_tags(run_id, {names.FAILURE: reason})
        self.end_run(run_id, status)

    def status(self, run_id: str) -> str:
        return str(self.client.get_run(run_id).info.status)


def open_store(tracking_uri: str | None, experiment: str) -> tuple[Tracker, str, str]:
    """A Tracker on the store, the experiment created once; return (tracker, id, uri)."""
    from mlflow.exceptions import MlflowException

    if not experiment or not experiment.strip():
        raise SweepError("--experiment is empty; give an experiment name")
    uri = resolve_tracking_uri(tracking_uri)
    check_server(uri)
    try:  # any failure to open or create the store is the user's URI (a bad path, no server)
        tracker = Tracker(uri)
        client = tracker.client
        found = client.get_experiment_by_name(experiment)
        if found is None:
            exp_id = client.create_experiment(experiment, artifact_location=artifact_root(uri),
                                              tags={EXPERIMENT_KIND: TRAINING_KIND})
        else:
            exp_id = found.experiment_id
            if EXPERIMENT_KIND not in found.tags:
                client.set_experiment_tag(exp_id, EXPERIMENT_KIND, TRAINING_KIND)
    except (MlflowException, OSError, Exception) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise SweepError(f"tracking store {redact('', uri)!r} is not usable: {first}") from exc
    return tracker, exp_id, uri


def config_hash(config: dict[str, Any]) -> str:
    """A stable digest of the fields that define what a point measures."""
    kept = {k: v for k, v in sorted(config.items()) if k not in HASH_EXCLUDE}
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()[:16]


def sweep_hash(config_hashes: list[str], preset: str) -> str:
    return hashlib.sha256(json.dumps([preset, sorted(config_hashes)]).encode()).hexdigest()[:16]


def find_runs(client: "MlflowClient", exp_id: str, filter_string: str) -> list[Any]:
    """All runs of the experiment matching an MLflow filter (paged)."""
    runs: list[Any] = []
    token = None
    while True:
        page = client.search_runs([exp_id], filter_string=filter_string, max_results=1000,
                                  page_token=token, order_by=["attributes.start_time DESC"])
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def finished_points(client: "MlflowClient", exp_id: str) -> dict[str, Any]:
    """Latest FINISHED point run per config hash."""
    out: dict[str, Any] = {}
    for run in find_runs(client, exp_id, f"tags.`{ROLE}` = '{names.ROLE_POINT}' and "
                                         "attributes.status = 'FINISHED'"):
        out.setdefault(run.data.tags.get(CONFIG_HASH, run.info.run_id), run)
    return out


SERVER_TIMEOUT_S = 5.0  # MLflow's own HTTP client retries for minutes; ask /health first


def check_server(uri: str) -> None:
    """An http(s) tracking server must answer /health within a few seconds."""
    import urllib.error
    import urllib.request

    if not uri.startswith(("http://", "https://")):
        return
    plain = redact("", uri)  # /health needs no credentials; urllib cannot parse user:pass@
    try:
        with urllib.request.urlopen(plain.rstrip("/") + "/health",
                                    timeout=SERVER_TIMEOUT_S) as reply:
            if reply.status != 200:
                raise SweepError(f"tracking server {plain} answered HTTP {reply.status} at /health")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SweepError(f"tracking server {redact('', uri)} does not answer ({reason}); start "
                         "it (budget server start, budget ui) or fix --tracking-uri") from None
    _check_sign_in(uri, plain)


def _check_sign_in(uri: str, plain: str) -> None:
    """A basic-auth server that refuses our credentials (none, or a wrong password) is one line
    naming what to set, not MLflow's 401 traceback from the first call."""
    from urllib.parse import urlparse

    from mlflow.utils.credentials import read_mlflow_creds

    from experiments.team.health import api_get

    creds = read_mlflow_creds()
    parsed = urlparse(uri)
    user, password = (creds.username, creds.password) if creds.username else (
        parsed.username, parsed.password)
    code, _ = api_get(plain.rstrip("/"), "/api/2.0/mlflow/experiments/search?max_results=1",
                      (user, password or "") if user else None, timeout=SERVER_TIMEOUT_S)
    if code == 401:
        who = f"as {user!r} " if user else "without credentials "
        raise SweepError(f"tracking server {plain} refused the sign-in {who}(HTTP 401); set "
                         "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or "
                         "~/.mlflow/credentials) to your account (budget server user add NAME)")


def open_reader(tracking_uri: str | None) -> tuple["MlflowClient", str]:
    """A client on an EXISTING store, for reading: a sqlite file that is not there, a server that
    does not answer or a store MLflow cannot open is one SweepError line, and nothing is created."""
    from mlflow.tracking import MlflowClient

    uri = resolve_tracking_uri(tracking_uri)
    if uri.startswith("sqlite:///"):
        db = Path(uri[len("sqlite:///"):]).expanduser()
        if not db.is_file():
            raise SweepError(f"no MLflow store at {db} (from {uri}); run 'budget sweep' there "
                             "first or fix --tracking-uri")
    check_server(uri)
    try:
        return MlflowClient(tracking_uri=uri), uri
    except Exception as exc:  # mlflow raises many types for a store it cannot open
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise SweepError(f"tracking store {redact('', uri)!r} is not usable: {first}") from None


def _experiment_id(experiment: str, tracking_uri: str | None) -> tuple["MlflowClient", str]:
    client, uri = open_reader(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        from experiments.tracking.unknown_experiment import unknown_experiment

        raise unknown_experiment(client, experiment, redact('', uri))
    return client, found.experiment_id


def sweep_runs_frame(experiment: str, tracking_uri: str | None = None) -> "pd.DataFrame":
    """Finished sweep points: run_id, params, params_non_embedding, tokens, flops, loss, ..."""
    import pandas as pd

    client, exp_id = _experiment_id(experiment, tracking_uri)
    rows = []
    for run in finished_points(client, exp_id).values():
        p, m = run.data.params, run.data.metrics
        rows.append({"run_id": run.info.run_id, "params": int(p["params"]),
                     "params_non_embedding": int(p["params_non_embedding"]),
                     "tokens": int(m.get(names.TOKENS, p["tokens"])),
                     "flops": float(p["flops_budget"]), "loss": float(m[names.FINAL_VAL_LOSS]),
                     "flops_model": float(m.get(names.FLOPS_MODEL, "nan")),
                     "n_layer": int(p["n_layer"]), "d_model": int(p["d_model"])})
    columns = ["run_id", "params", "params_non_embedding", "tokens", "flops", "loss",
               "flops_model", "n_layer", "d_model"]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.sort_values(["flops", "params"]).reset_index(drop=True)


def sweep_curves_frame(experiment: str, tracking_uri: str | None = None) -> "pd.DataFrame":
    """Per-step training loss of finished points: run_id, params, tokens, flops (6 N t), loss."""
    import pandas as pd

    client, exp_id = _experiment_id(experiment, tracking_uri)
    parts = []
    for run in finished_points(client, exp_id).values():
        n = int(run.data.params["params"])
        loss = {m.step: m.value for m in client.get_metric_history(run.info.run_id,
                                                                    names.TRAIN_LOSS)}
        seen = {m.step: m.value for m in client.get_metric_history(run.info.run_id,
                                                                    names.TOKENS_SEEN)}
        steps = sorted(set(loss) & set(seen))
        parts.append(pd.DataFrame({"run_id": run.info.run_id, "params": n,
                                   "tokens": [int(seen[s]) for s in steps],
                                   "flops": [6.0 * n * seen[s] for s in steps],
                                   "loss": [loss[s] for s in steps]}))
    if not parts:
        return pd.DataFrame(columns=["run_id", "params", "tokens", "flops", "loss"])
    return pd.concat(parts, ignore_index=True)


def log_folder_run(tracker: Tracker, experiment_id: str, folder: str | Path, *, name: str,
                   role: str, params: Mapping[str, str], metrics: Mapping[str, float],
                   artifact_path: str) -> dict[str, str]:
    """A finished run holding `folder` as artifacts under `artifact_path`, with params and
    metrics (`budget report --experiment`); its ids. SweepError naming the store on failure."""
    from mlflow.exceptions import MlflowException

    try:
        run_id = tracker.create_run(experiment_id, name, {ROLE: role})
        tracker.log_params(run_id, params)
        tracker.log_metrics(run_id, metrics)
        tracker.log_artifacts(run_id, folder, artifact_path)
        tracker.end_run(run_id)
        artifact_uri = tracker.client.get_run(run_id).info.artifact_uri
    except (MlflowException, OSError) as exc:
        raise SweepError(f"cannot log the report to {redact('', tracker.uri)!r}: "
                         f"{str(exc).splitlines()[0]}") from None
    return {"tracking_uri": redact("", tracker.uri), "experiment_id": str(experiment_id),
            "run_id": run_id, "artifact_uri": f"{artifact_uri}/{artifact_path}"}


def close_running(tracker: Tracker, run_ids: Iterable[str], reason: str,
                  status: str = "KILLED") -> list[str]:
    """Runs of `run_ids` still RUNNING end `status` (KILLED) with `reason` (MLflow has no
    heartbeat, so a run whose process died stays RUNNING forever otherwise); the ids closed."""
    closed = []
    for run_id in run_ids:
        if tracker.status(run_id) == "RUNNING":
            tracker.fail_run(run_id, reason, status=status)
            closed.append(run_id)
    return closed
