"""Writing the report folder safely: everything into a temporary folder, then renamed into place.

`write_files(out, files)` takes the report's files (relative path -> bytes) and
1. refuses, before writing anything, an `--out` that is a symbolic link or a file, and an entry the
   report owns that has the wrong kind (a file named `figures`, a folder named `proposal.html`);
2. writes every file into a new temporary folder beside `out` (a full disk or a write error there
   leaves `out` untouched and the temporary folder removed);
3. moves the new files into `out`, replacing the report's own entries of an earlier run whole (its
   `figures/` folder goes, so no stale figure stays beside the new ones); a symbolic link planted
   at one of those names is replaced as a link, never written through.
Files in `out` that the report does not own are left alone.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from budget.errors import BudgetError


def write_files(out: Path, files: Mapping[str, bytes], folders: tuple[str, ...]) -> Path:
    """Write `files` (relative POSIX paths -> bytes) into `out` atomically per top-level entry.

    `folders` are the top-level names that are folders the report owns (e.g. 'figures').
    Returns the resolved output folder."""
    out = Path(out)
    _check_target(out, files, folders)
    try:
        out.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    except OSError as exc:
        raise _error(out, exc) from None
    try:
        for name, data in files.items():
            path = staging / name
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "xb") as handle:  # a fresh file in our own new folder
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        for name in folders:
            (staging / name).mkdir(exist_ok=True)
        _swap_in(staging, out)
    except OSError as exc:
        raise _error(out, exc) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out.resolve()


def _check_target(out: Path, files: Mapping[str, bytes], folders: tuple[str, ...]) -> None:
    if out.is_symlink():
        raise BudgetError(f"--out '{out}' is a symbolic link; give the folder itself (links are not "
                          "followed)")
    if out.exists() and not out.is_dir():
        raise BudgetError(f"cannot write the report to '{out}': it is a file, not a folder; give --out a "
                          "folder (it is created if missing)")
    tops = {name.split("/", 1)[0] for name in files} | set(folders)
    for top in sorted(tops):
        entry = out / top
        if entry.is_symlink() or not entry.exists():
            continue
        want_dir = top in folders
        if want_dir and not entry.is_dir():
            raise BudgetError(f"'{entry}' is a file, but the report writes a folder there; move it or "
                              "give another --out")
        if not want_dir and entry.is_dir():
            raise BudgetError(f"'{entry}' is a folder, but the report writes a file there; move it or "
                              "give another --out")


def _swap_in(staging: Path, out: Path) -> None:
    """Move each top-level entry of `staging` into `out`, replacing the old one whole."""
    for new in sorted(staging.iterdir()):
        target = out / new.name
        if new.is_dir() and target.is_dir() and not target.is_symlink():
            old = Path(tempfile.mkdtemp(prefix=f".{new.name}.old-", dir=out))
            os.replace(target, old / new.name)
            os.replace(new, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            if target.is_symlink():
                target.unlink()  # replace the link itself, never its target
            os.replace(new, target)


def _error(out: Path, exc: OSError) -> BudgetError:
    why = exc.strerror or type(exc).__name__
    return BudgetError(f"cannot write the report to '{out}': {why}; nothing was changed there; give "
                       "--out a folder you can write (it is created if missing)")
