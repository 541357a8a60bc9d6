"""MLflow store set-up and the readers that `budget fit --experiment` uses.

Store: `--tracking-uri`, else `MLFLOW_TRACKING_URI`, else the embedded default
`sqlite:///mlflow.db` in the working directory, with artifacts in `./mlartifacts`. The
experiment is created once, before any training (concurrent first creation of a sqlite store
fails). Runs carry tags `budget.role` (`sweep` for a parent, `point` for a child),
`budget.config_hash` and `budget.sweep_hash`.

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

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from experiments.errors import SweepError

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.tracking import MlflowClient

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"  # MLflow 3's own default store, in the CWD
ARTIFACT_DIR = "mlartifacts"
ROLE, CONFIG_HASH, SWEEP_HASH, FAILURE = ("budget.role", "budget.config_hash",
                                          "budget.sweep_hash", "budget.failure_reason")
# MLflow 3's UI opens an experiment of this kind on its "Model training" pages, not GenAI's
EXPERIMENT_KIND, TRAINING_KIND = "mlflow.experimentKind", "custom_model_development"
HASH_EXCLUDE = ("code_version",)  # fields that do not change what a point measures


def resolve_tracking_uri(tracking_uri: str | None = None) -> str:
    """--tracking-uri, else MLFLOW_TRACKING_URI, else sqlite:///mlflow.db in the CWD."""
    return tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def artifact_root(uri: str) -> str | None:
    """For a local sqlite store: `mlartifacts/` beside the database file (as a file URI)."""
    if not uri.startswith("sqlite:///"):
        return None
    db = Path(uri[len("sqlite:///"):]).expanduser().resolve()
    return (db.parent / ARTIFACT_DIR).as_uri()


def open_store(tracking_uri: str | None, experiment: str) -> tuple["MlflowClient", str, str]:
    """Point MLflow at the store, create the experiment once; return (client, id, uri)."""
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    if not experiment or not experiment.strip():
        raise SweepError("--experiment is empty; give an experiment name")
    uri = resolve_tracking_uri(tracking_uri)
    try:  # any failure to open or create the store is the user's URI (a bad path, no server)
        mlflow.set_tracking_uri(uri)
        client = MlflowClient(tracking_uri=uri)
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
        raise SweepError(f"tracking store {uri!r} is not usable: {first}") from exc
    return client, exp_id, uri


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
    for run in find_runs(client, exp_id, f"tags.`{ROLE}` = 'point' and "
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
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=SERVER_TIMEOUT_S) as reply:
            if reply.status != 200:
                raise SweepError(f"tracking server {uri} answered HTTP {reply.status} at /health")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SweepError(f"tracking server {uri} does not answer ({reason}); start it "
                         "(budget ui / mlflow server) or fix --tracking-uri") from None


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
        raise SweepError(f"tracking store {uri!r} is not usable: {first}") from None


def _experiment_id(experiment: str, tracking_uri: str | None) -> tuple["MlflowClient", str]:
    client, uri = open_reader(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        from experiments.names import unknown_experiment

        raise unknown_experiment(client, experiment, uri)
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
                     "tokens": int(m.get("tokens", p["tokens"])),
                     "flops": float(p["flops_budget"]), "loss": float(m["final_val_loss"]),
                     "flops_model": float(m.get("flops_model", "nan")),
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
        loss = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "train_loss")}
        seen = {m.step: m.value for m in client.get_metric_history(run.info.run_id,
                                                                    "tokens_seen")}
        steps = sorted(set(loss) & set(seen))
        parts.append(pd.DataFrame({"run_id": run.info.run_id, "params": n,
                                   "tokens": [int(seen[s]) for s in steps],
                                   "flops": [6.0 * n * seen[s] for s in steps],
                                   "loss": [loss[s] for s in steps]}))
    if not parts:
        return pd.DataFrame(columns=["run_id", "params", "tokens", "flops", "loss"])
    return pd.concat(parts, ignore_index=True)
