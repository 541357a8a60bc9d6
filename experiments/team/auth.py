"""MLflow's basic-auth app on the team server: its config, the admin's and the CSRF secrets, and
the researchers' accounts (`budget server user add NAME`, created through MLflow's REST API).

Permissions are MLflow's own: every signed-in user may READ (`default_permission`), whoever
creates an experiment MANAGEs it, and its owner (or the admin) grants others EDIT or MANAGE. The
admin's password stays on the server's machine (`<dir>/admin-password`, 0600); researchers sign
in with their own account. Every file here holding a secret is created 0600.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import stat
import urllib.error
import urllib.request
from pathlib import Path

from experiments.errors import SweepError
from experiments.team.postgres import PGPASS_FILE

AUTH_INI, AUTH_DB, ADMIN_PASSWORD_FILE = "basic_auth.ini", "basic_auth.db", "admin-password"
AUTH_CACHE_TTL_S = 60
FLASK_SECRET_FILE = "flask-secret"  # basic-auth's CSRF key, the same across restarts
SECRET_FILES = (PGPASS_FILE, ADMIN_PASSWORD_FILE, FLASK_SECRET_FILE, AUTH_DB, AUTH_INI)
ADMIN_USER = "admin"
USER_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9._-]{0,63}$")
MIN_PASSWORD = 12


def write_secret(path: Path, text: str) -> None:
    """`text` into `path`, created 0600 (never readable by others, not even for a moment)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    path.chmod(0o600)


def _secret(path: Path) -> str:
    """A random secret kept in `path` (mode 0600), made on first use."""
    if not path.is_file():
        write_secret(path, secrets.token_urlsafe(18) + "\n")
    return path.read_text(encoding="utf-8").strip()


def admin_auth(state: Path) -> tuple[str, str] | None:
    """The admin's credentials when basic-auth is on (only on the server's own machine)."""
    path = state / ADMIN_PASSWORD_FILE
    return (ADMIN_USER, path.read_text(encoding="utf-8").strip()) if path.is_file() else None


def write_auth_config(state: Path) -> dict[str, str]:
    """MLflow's basic-auth config (users in a sqlite file beside it, made 0600 before MLflow opens
    it; READ for everyone else); the environment the server needs: the admin password and the
    CSRF key (made once, 0600)."""
    write_secret(
        state / AUTH_INI,
        "[mlflow]\ndefault_permission = READ\n"
        f"database_uri = sqlite:///{state / AUTH_DB}\nadmin_username = {ADMIN_USER}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        # a PBKDF2 check per request made every logged batch slow; a changed password now
        # takes up to this long to reach the other workers
        f"auth_cache_ttl_seconds = {AUTH_CACHE_TTL_S}\n")
    if not (state / AUTH_DB).exists():
        write_secret(state / AUTH_DB, "")  # an empty file is an empty sqlite database
    return {"MLFLOW_AUTH_CONFIG_PATH": str(state / AUTH_INI),
            "MLFLOW_AUTH_ADMIN_PASSWORD": _secret(state / ADMIN_PASSWORD_FILE),
            "MLFLOW_FLASK_SERVER_SECRET_KEY": _secret(state / FLASK_SECRET_FILE)}


def read_password_file(path: str | Path) -> str:
    """A password from a file only its owner can read (mode 0600 or stricter)."""
    file = Path(path)
    try:
        mode = stat.S_IMODE(file.stat().st_mode)
        text = file.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise SweepError(f"--password-file {str(path)!r} cannot be read ({exc}); give a file "
                         "holding the password") from None
    if mode & 0o077:
        raise SweepError(f"--password-file {str(path)!r} is mode {mode:04o}; others could read it: "
                         f"chmod 600 {path}")
    return text


def add_user(url: str, state: Path, name: str, password: str) -> dict[str, object]:
    """Create account `name` through MLflow's REST API (users/create), signed in as the admin;
    MLflow keeps only a salted hash of the password."""
    if not USER_NAME.match(name):
        raise SweepError(f"user name {name!r} is not allowed; use a letter then letters, digits, "
                         "'.', '_' or '-' (at most 64)")
    if len(password) < MIN_PASSWORD:
        raise SweepError(f"the password for {name!r} has {len(password)} characters; give at "
                         f"least {MIN_PASSWORD}")
    auth = admin_auth(state)
    if auth is None:
        raise SweepError(f"the server in {state} runs without --basic-auth; restart it with "
                         "--basic-auth to give each researcher an account")
    body = json.dumps({"username": name, "password": password}).encode()
    request = urllib.request.Request(f"{url}/api/2.0/mlflow/users/create", data=body,
                                     method="POST", headers={"Content-Type": "application/json"})
    token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            user = json.loads(reply.read().decode()).get("user", {})
    except urllib.error.HTTPError as exc:
        detail = exc.read(2048).decode(errors="replace")
        try:
            detail = str(json.loads(detail).get("message", detail))
        except (ValueError, AttributeError):
            pass
        raise SweepError(f"user {name!r} was not created: HTTP {exc.code}: "
                         f"{' '.join(detail.split()).split(' Error: ')[0][:200]}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise SweepError(f"the server at {url} did not answer ({exc}); start it with budget "
                         "server start") from None
    return {"username": user.get("username", name), "id": user.get("id"),
            "is_admin": bool(user.get("is_admin", False))}
