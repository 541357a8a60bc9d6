"""What `budget server status` checks, each by doing the thing rather than by a process id:
PostgreSQL answers a query, the MLflow REST API answers a search, and the artifact store behind
the server answers a listing (and, when local, is a folder the server can write).

Each check returns None when the part works, else one line saying why not.
"""

from __future__ import annotations

import base64
import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

from experiments.team.postgres import DB_NAME, DB_USER, LOOPBACK, PGPASS_FILE

CHECK_TIMEOUT_S = 5.0
POSTGRES, MLFLOW, ARTIFACTS = "postgres", "mlflow", "artifacts"
COMPONENT_NAMES = {POSTGRES: "PostgreSQL", MLFLOW: "MLflow API", ARTIFACTS: "artifact storage"}


def check_postgres(state: Path, port: int, timeout: float = CHECK_TIMEOUT_S) -> str | None:
    """`SELECT 1` on the mlflow database over loopback TCP, with the pgpass password."""
    import psycopg2

    try:
        conn = psycopg2.connect(host=LOOPBACK, port=port, user=DB_USER, dbname=DB_NAME,
                                passfile=str(state / PGPASS_FILE),
                                connect_timeout=max(1, int(timeout)))
    except psycopg2.Error as exc:
        return _first_line(str(exc)) or type(exc).__name__
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
            return None if cur.fetchone() == (1,) else "SELECT 1 returned something else"
    except psycopg2.Error as exc:
        return _first_line(str(exc)) or type(exc).__name__
    finally:
        conn.close()


def api_get(url: str, path: str, auth: tuple[str, str] | None,
            timeout: float = CHECK_TIMEOUT_S) -> tuple[int, str]:
    """(HTTP status, body) of GET url+path; status 0 with the reason when nothing answered."""
    request = urllib.request.Request(url + path)
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return int(reply.status), reply.read(65536).decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read(2048).decode(errors="replace")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return 0, str(reason)


def check_mlflow(url: str, auth: tuple[str, str] | None) -> str | None:
    """A real REST call (search one experiment), which also needs MLflow's backend store."""
    code, body = api_get(url, "/api/2.0/mlflow/experiments/search?max_results=1", auth)
    if code == 200:
        return None
    return f"HTTP {code}: {_reason(body)}" if code else f"no answer on {url} ({body})"


def check_artifacts(url: str, auth: tuple[str, str] | None, destination: str) -> str | None:
    """The server lists its artifact root (a proxied call to the store); a local destination
    must also be a folder that exists and can be written."""
    parsed = urlparse(destination)
    if parsed.scheme in ("", "file"):
        folder = Path(parsed.path if parsed.scheme else destination)
        if not folder.is_dir():
            return f"{folder} is missing"
        if not os.access(folder, os.W_OK | os.X_OK):
            return f"{folder} cannot be written"
    code, body = api_get(url, "/api/2.0/mlflow-artifacts/artifacts", auth)
    if code == 200:
        return None
    return f"listing failed, HTTP {code}: {_reason(body)}" if code else f"no answer ({body})"


def _reason(body: str) -> str:
    try:
        data = json.loads(body)
        return _first_line(str(data.get("message") or data.get("error_code") or body))
    except (ValueError, AttributeError):
        return _first_line(body) or "no body"


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0][:200] if lines else ""
