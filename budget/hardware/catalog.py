"""The accelerator catalog: dense peak throughput, memory, interconnect and price, each sourced.

The built-in catalog is `budget/hardware/accelerators.toml`. Files named with `--catalog FILE` or in
the `BUDGET_CATALOG` environment variable (paths joined by the OS path separator) use the same
schema and add entries or override entries with the same `id`. A malformed file raises
`CatalogError` naming the file, the row and the field.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
import warnings
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Iterable

from budget.errors import BudgetError, BudgetWarning, CatalogError
from budget.hardware.prices import PriceRow, default_row, parse_prices
from budget.text import has_control, printable

BUILTIN_CATALOG = Path(__file__).with_name("accelerators.toml")
CATALOG_ENV = "BUDGET_CATALOG"
PRECISIONS = ("fp32", "tf32", "bf16", "fp16", "fp8", "int8")
SOURCE_KEYS = ("peak", "memory", "bandwidth", "tdp", "interconnect", "price", "memory_mib", "scale_up",
               "scale_out", "mfu", "matmul")
# An id or alias is typed on command lines and pasted back from printed ones: letters, digits and
# . _ + - : @ only, so no shell metacharacter, space or control character can ride in with it
ID_PATTERN = re.compile(r"\w[\w.+:@-]*")
MIB = 2**20
TERA = 1e12
GB = 1e9

_NUMBERS = ("memory_gb", "memory_bandwidth_gbs", "tdp_w", "interconnect_gbs_bidir",
            "price_usd_per_hour", "memory_mib", "gpus_per_node", "scale_up_gbs_per_dir",
            "scale_out_gbs_per_dir", "default_mfu", "matmul_efficiency")
_FRACTIONS = ("default_mfu", "matmul_efficiency")  # must lie in (0, 1]
# Plausible range of one device's dense peak, TFLOP/s: 1 GFLOP/s to 10 EFLOP/s. Outside it a row
# is a unit slip (FLOP/s typed as TFLOP/s, or 1e-30) and would print inf or 0 GPU-hours.
PEAK_TFLOPS_RANGE = (1e-3, 1e7)
# Plausible ranges of the other numbers (memory GB or MiB, bandwidth GB/s, watts, GB/s, USD per hour).
_RANGES = {"memory_gb": (1e-3, 1e6), "memory_mib": (1.0, 1e9), "memory_bandwidth_gbs": (1e-2, 1e7),
           "tdp_w": (0.1, 1e6), "interconnect_gbs_bidir": (1e-3, 1e7),
           "scale_up_gbs_per_dir": (1e-3, 1e7), "scale_out_gbs_per_dir": (1e-3, 1e7),
           "price_usd_per_hour": (1e-4, 1e4)}
# which source key backs each numeric field
_SOURCE_OF = {"memory_gb": "memory", "memory_bandwidth_gbs": "bandwidth", "tdp_w": "tdp",
              "interconnect_gbs_bidir": "interconnect", "price_usd_per_hour": "price",
              "memory_mib": "memory_mib", "gpus_per_node": "scale_up",
              "scale_up_gbs_per_dir": "scale_up", "scale_out_gbs_per_dir": "scale_out",
              "default_mfu": "mfu", "matmul_efficiency": "matmul"}


@dataclass(frozen=True)
class Accelerator:
    """One accelerator: dense peaks per precision (TFLOP/s; int8 in TOPS), memory, price."""

    id: str
    name: str
    vendor: str
    memory_gb: float
    memory_bandwidth_gbs: float
    peak_tflops: dict[str, float]
    sources: dict[str, str]
    aliases: tuple[str, ...] = ()
    form_factor: str = ""
    tdp_w: float | None = None
    interconnect: str = ""
    interconnect_gbs_bidir: float | None = None
    price_usd_per_hour: float | None = None
    price_provider: str = ""
    price_date: str = ""
    notes: str = ""
    # 2:4-sparse peaks (TFLOP/s; int8 in TOPS) where the datasheet lists them apart (Jetson Orin);
    # the planner never reads them: peak_tflops stays dense
    sparse_peak_tflops: dict[str, float] = field(default_factory=dict)
    price_tier: str = ""  # e.g. "on-demand, RunPod Secure Cloud, 1 GPU"; "contract" where it is one
    memory_mib: float | None = None  # as nvidia-smi prints memory.total (H100 80GB: 81,559 MiB)
    gpus_per_node: int | None = None  # devices in one scale-up domain (NVLink/Infinity Fabric/ICI)
    scale_up_gbs_per_dir: float | None = None  # intra-node link per device, one direction
    scale_out_gbs_per_dir: float | None = None  # inter-node NIC per device, one direction
    default_mfu: float | None = None  # a published training run's MFU on this device (sources.mfu)
    matmul_efficiency: float | None = None  # best-shape BF16 matmul / dense peak (sources.matmul)
    devices_per_package: int = 1  # MI250X: 2 GCDs, each its own device to software
    origin: str = field(default=str(BUILTIN_CATALOG), compare=False)

    @property
    def memory_bytes(self) -> float:
        """What the device reports (nvidia-smi MiB) where the catalog has it, else vendor GB."""
        return self.memory_mib * MIB if self.memory_mib else self.memory_gb * GB

    @property
    def memory_basis(self) -> str:
        return (f"{self.memory_mib:,.0f} MiB as nvidia-smi reports it" if self.memory_mib
                else f"{self.memory_gb:g} GB (vendor figure, decimal)")

    def peak_flops(self, precision: str) -> float:
        """Dense peak in FLOP/s (or OP/s for int8) at `precision`; BudgetError if not supported."""
        if precision not in PRECISIONS:
            raise BudgetError(f"precision {precision!r} is unknown; choose one of {', '.join(PRECISIONS)}")
        if precision not in self.peak_tflops:
            have = ", ".join(p for p in PRECISIONS if p in self.peak_tflops) or "none"
            raise BudgetError(f"{self.id} has no {precision} peak in the catalog; choose a precision "
                              f"it has: {have}")
        return self.peak_tflops[precision] * TERA

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "aliases": list(self.aliases), "vendor": self.vendor,
            "form_factor": self.form_factor, "memory_gb": self.memory_gb,
            "memory_bandwidth_gbs": self.memory_bandwidth_gbs, "tdp_w": self.tdp_w,
            "interconnect": self.interconnect,
            "interconnect_gbs_bidir": self.interconnect_gbs_bidir,
            "peak_tflops": dict(self.peak_tflops),
            "sparse_peak_tflops": dict(self.sparse_peak_tflops),
            "price_usd_per_hour": self.price_usd_per_hour, "price_provider": self.price_provider,
            "price_date": self.price_date, "price_tier": self.price_tier,
            "memory_mib": self.memory_mib, "memory_bytes": self.memory_bytes,
            "gpus_per_node": self.gpus_per_node, "scale_up_gbs_per_dir": self.scale_up_gbs_per_dir,
            "scale_out_gbs_per_dir": self.scale_out_gbs_per_dir, "default_mfu": self.default_mfu,
            "matmul_efficiency": self.matmul_efficiency,
            "devices_per_package": self.devices_per_package,
            "notes": self.notes, "sources": dict(self.sources),
        }


@dataclass(frozen=True)
class Catalog:
    """Accelerators by id, with alias lookup and close-match suggestions."""

    accelerators: tuple[Accelerator, ...]
    notes: tuple[str, ...] = ()  # what loading changed: overridden built-in rows, ids shadowing aliases
    prices: tuple[PriceRow, ...] = ()  # dated [[price]] rows (budget.hardware.prices)

    def prices_for(self, name: str) -> list[PriceRow]:
        """Every price row of one accelerator, its own default row first."""
        acc = self.get(name)
        own = default_row(acc)
        return ([own] if own else []) + [p for p in self.prices if p.device == acc.id]

    def get(self, name: str) -> Accelerator:
        """Find by id or alias, case-insensitively; BudgetError listing close matches if absent."""
        key = name.strip().lower()
        for acc in reversed(self.accelerators):  # later files override earlier ones
            if key == acc.id.lower() or key in (a.lower() for a in acc.aliases):
                return acc
        names = [acc.id for acc in self.accelerators] + [a for acc in self.accelerators for a in acc.aliases]
        close = difflib.get_close_matches(key, names, n=4, cutoff=0.4)
        hint = f"close matches: {', '.join(close)}" if close else "run 'budget gpus' for the list"
        raise BudgetError(f"unknown accelerator {name!r}; {hint}")

    def to_dict(self) -> dict[str, Any]:
        return {"accelerators": [acc.to_dict() for acc in self.accelerators], "notes": list(self.notes),
                "prices": [p.to_dict() for p in self.prices]}


def load_catalog(paths: Iterable[str | os.PathLike[str]] | None = None,
                 use_env: bool = True) -> Catalog:
    """The built-in catalog, then `BUDGET_CATALOG` files, then `paths`; later ids override.

    An override keeps the built-in row's aliases unless it lists its own; each override, and each
    id that equals another row's alias, is said in `Catalog.notes` and as a `BudgetWarning`. A file
    whose top level says `replaces_builtin = true` is a whole catalog of its own: the rows loaded
    before it (the built-in ones among them) are dropped, and nothing is said to be overridden.
    """
    files: list[Path] = [BUILTIN_CATALOG]
    if use_env and os.environ.get(CATALOG_ENV):
        files += [Path(p) for p in os.environ[CATALOG_ENV].split(os.pathsep) if p]
    files += [Path(p) for p in (paths or ())]
    by_id: dict[str, Accelerator] = {}
    owners: dict[str, set[str]] = {}  # alias (lowercase) -> the ids (lowercase) of rows listing it
    notes: list[str] = []
    prices: list[PriceRow] = []
    for path in files:
        data = _load_toml(path)  # parsed once: the flag and the rows read the same table
        if _replaces_builtin(path, data):
            by_id.clear()
            owners.clear()
            prices.clear()
        prices += parse_prices(Path(path), data)
        for acc, has_aliases in _read_rows(path, data):
            acc = _merge(by_id, owners, acc, has_aliases, notes)
            by_id.pop(acc.id.lower(), None)
            by_id[acc.id.lower()] = acc  # ids are case-insensitive, as lookups are
    for note in notes:
        warnings.warn(note, BudgetWarning, stacklevel=2)
    catalog = Catalog(tuple(by_id.values()), tuple(notes))
    return replace(catalog, prices=tuple(replace(p, device=_price_device(catalog, p)) for p in prices))


def _price_device(catalog: Catalog, row: PriceRow) -> str:
    """The id a price row's device (an id or alias) names; CatalogError when none."""
    try:
        return catalog.get(row.device).id
    except BudgetError:
        raise CatalogError(f"catalog price row for '{row.device}' ({row.provider}, {row.tier}): "
                           "no accelerator has that id or alias") from None



def _merge(by_id: dict[str, Accelerator], owners: dict[str, set[str]], acc: Accelerator,
           has_aliases: bool, notes: list[str]) -> Accelerator:
    """Apply one row over the rows loaded so far: keep replaced aliases, note what it shadows.
    `owners` (alias -> ids) is kept up to date, so each row costs O(its aliases), not O(rows)."""
    key = acc.id.lower()
    old = by_id.get(key)
    if old is not None:
        if not has_aliases:
            acc = replace(acc, aliases=old.aliases)
        kept = f" (keeps its aliases {', '.join(old.aliases)})" if old.aliases and not has_aliases else ""
        source = "the built-in catalog" if old.origin == str(BUILTIN_CATALOG) else old.origin
        notes.append(f"{acc.origin}: accelerator '{acc.id}' overrides the row from {source}{kept}")
        for alias in old.aliases:
            owners.get(alias.lower(), set()).discard(key)
    shadowed = owners.get(key, set()) - {key}
    order = {k: i for i, k in enumerate(by_id)} if shadowed else {}
    for other_key in sorted(shadowed, key=order.__getitem__):
        other = by_id[other_key]
        notes.append(f"{acc.origin}: id '{acc.id}' is also an alias of '{other.id}'; "
                     f"'{acc.id}' now means the new row, '{other.id}' still finds the old one")
    for alias in acc.aliases:
        owners.setdefault(alias.lower(), set()).add(key)
    return acc


def _replaces_builtin(path: Path, data: dict[str, Any]) -> bool:
    """The file's top-level `replaces_builtin` flag (false when absent)."""
    flag = data.get("replaces_builtin", False)
    if not isinstance(flag, bool):
        raise CatalogError(f"catalog file {path}: replaces_builtin = {flag!r} must be true or false")
    return flag


def read_catalog_file(path: Path) -> list[Accelerator]:
    """Parse and validate one catalog file."""
    return [acc for acc, _ in _read_rows(path)]


def _load_toml(path: Path) -> dict[str, Any]:
    """One catalog file's TOML table; CatalogError naming the file when it cannot be read."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CatalogError(f"catalog file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogError(f"catalog file {path} cannot be read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"catalog file {path} is not valid TOML: {exc}") from None
    except RecursionError:
        raise CatalogError(f"catalog file {path} nests tables or arrays too deeply to read; a "
                           "catalog is [[accelerator]] rows of plain values") from None
    return data


def _read_rows(path: Path, data: dict[str, Any] | None = None) -> list[tuple[Accelerator, bool]]:
    """Each row of one file with whether it lists its own aliases; two rows with one id are an error."""
    path = Path(path)
    if data is None:
        data = _load_toml(path)
    unknown = [k for k in data if k not in ("accelerator", "price", "replaces_builtin")]
    if unknown:
        raise CatalogError(f"catalog file {path}: unknown top-level key(s) {', '.join(map(repr, unknown))}; "
                           "allowed: [[accelerator]] and [[price]] tables and replaces_builtin")
    rows = data.get("accelerator")
    if rows is None and "price" in data:
        return []  # a file of price rows only
    if not isinstance(rows, list) or not rows:
        other = f" (it has {', '.join(map(repr, data))}; write [[accelerator]])" if data else ""
        raise CatalogError(f"catalog file {path} has no [[accelerator]] tables{other}")
    out: list[tuple[Accelerator, bool]] = []
    seen: dict[str, int] = {}
    for i, row in enumerate(rows, start=1):
        acc = _parse_row(path, i, row)
        if acc.id.lower() in seen:
            raise CatalogError(f"catalog {path}: accelerators #{seen[acc.id.lower()]} and #{i} both have "
                               f"id '{acc.id}'; give each row its own id")
        seen[acc.id.lower()] = i
        out.append((acc, "aliases" in row))
    return out


# Row keys that are not Accelerator fields of the same name (a field read under another key): add
# them here, or the row is refused as having an unknown field.
EXTRA_ROW_KEYS: tuple[str, ...] = ()


def known_fields() -> tuple[str, ...]:
    """The keys a catalog row may have: the Accelerator dataclass's fields (but `origin`)."""
    return tuple(f.name for f in fields(Accelerator) if f.name != "origin") + EXTRA_ROW_KEYS


def required_fields() -> tuple[str, ...]:
    """The keys every row must have: the Accelerator fields without a default."""
    from dataclasses import MISSING

    return tuple(f.name for f in fields(Accelerator)
                 if f.default is MISSING and f.default_factory is MISSING)


def _check_keys(where: str, row: dict[str, Any]) -> None:
    """One error naming every missing field and every unknown key (with a did-you-mean)."""
    known = known_fields()
    unknown = [k for k in row if k not in known]
    missing = [k for k in required_fields() if k not in row]
    problems = []
    if missing:
        problems.append(f"missing field{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))}")
    for key in unknown:
        close = difflib.get_close_matches(key, missing or known, n=1, cutoff=0.6)
        close = close or difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        problems.append(f"unknown field '{key}'{hint}")
    if problems:
        raise CatalogError(f"{where}: {'; '.join(problems)}; the fields are {', '.join(known)}")


def _parse_row(path: Path, index: int, row: Any) -> Accelerator:
    where = f"catalog {path}, accelerator #{index}"
    if not isinstance(row, dict):
        raise CatalogError(f"{where}: not a table")
    if isinstance(row.get("id"), str):
        where += f" ({row['id']})"
    _check_keys(where, row)
    for key in ("id", "name", "vendor"):
        if not isinstance(row[key], str) or not row[key].strip():
            raise CatalogError(f"{where}: field '{key}' must be a non-empty string")
    _check_text(where, row)
    for key in _NUMBERS:
        if key in row:
            _check_positive(where, key, row[key], _RANGES.get(key))
            if key in _FRACTIONS and row[key] > 1:
                raise CatalogError(f"{where}: field '{key}' = {row[key]!r} must be a fraction in (0, 1]")
    for key in ("gpus_per_node", "devices_per_package"):
        if key in row and (not isinstance(row[key], int) or isinstance(row[key], bool) or row[key] < 1):
            raise CatalogError(f"{where}: field '{key}' = {row[key]!r} must be a whole number >= 1")
    peaks = row["peak_tflops"]
    if not isinstance(peaks, dict) or not peaks:
        raise CatalogError(f"{where}: field 'peak_tflops' must be a table of precision = TFLOP/s")
    for prec, value in peaks.items():
        if prec not in PRECISIONS:
            raise CatalogError(f"{where}: field 'peak_tflops.{prec}' is not a precision; "
                               f"allowed: {', '.join(PRECISIONS)}")
        _check_positive(where, f"peak_tflops.{prec}", value, PEAK_TFLOPS_RANGE)
    sparse = row.get("sparse_peak_tflops", {})
    if not isinstance(sparse, dict):
        raise CatalogError(f"{where}: field 'sparse_peak_tflops' must be a table of precision = TFLOP/s")
    for prec, value in sparse.items():
        if prec not in PRECISIONS:
            raise CatalogError(f"{where}: field 'sparse_peak_tflops.{prec}' is not a precision; "
                               f"allowed: {', '.join(PRECISIONS)}")
        _check_positive(where, f"sparse_peak_tflops.{prec}", value, PEAK_TFLOPS_RANGE)
    sources = row["sources"]
    if not isinstance(sources, dict):
        raise CatalogError(f"{where}: field 'sources' must be a table")
    needed = ["peak"] + [_SOURCE_OF[k] for k in _NUMBERS if k in row]
    lacking = [k for k in needed if not isinstance(sources.get(k), str) or not sources[k].strip()]
    if lacking:
        extra = [k for k in sources if k not in SOURCE_KEYS]
        hints = [f"'{k}' for '{c[0]}'?" for k in extra
                 for c in [difflib.get_close_matches(k, lacking, n=1, cutoff=0.6)] if c]
        hint = f" (did you mean {', '.join(hints)})" if hints else ""
        raise CatalogError(f"{where}: field{'s' if len(lacking) > 1 else ''} "
                           f"{', '.join(repr(f'sources.{k}') for k in lacking)} "
                           f"{'are' if len(lacking) > 1 else 'is'} missing{hint}: every number needs a source "
                           f"(keys: {', '.join(SOURCE_KEYS)})")
    aliases = row.get("aliases", [])
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        raise CatalogError(f"{where}: field 'aliases' must be a list of strings")
    for key, name in [("id", row["id"])] + [("aliases", a) for a in aliases]:
        if not ID_PATTERN.fullmatch(name):
            raise CatalogError(f"{where}: field '{key}' = {printable(repr(name))} may hold only letters, "
                               "digits and . _ + - : @ (it is typed on command lines and printed in "
                               "ones to paste)")
    return Accelerator(
        id=row["id"], name=row["name"], vendor=row["vendor"],
        memory_gb=float(row["memory_gb"]), memory_bandwidth_gbs=float(row["memory_bandwidth_gbs"]),
        peak_tflops={k: float(v) for k, v in peaks.items()}, sources=dict(sources),
        sparse_peak_tflops={k: float(v) for k, v in sparse.items()},
        aliases=tuple(aliases), form_factor=str(row.get("form_factor", "")),
        tdp_w=_opt_float(row.get("tdp_w")), interconnect=str(row.get("interconnect", "")),
        interconnect_gbs_bidir=_opt_float(row.get("interconnect_gbs_bidir")),
        price_usd_per_hour=_opt_float(row.get("price_usd_per_hour")),
        price_provider=str(row.get("price_provider", "")), price_date=str(row.get("price_date", "")),
        notes=str(row.get("notes", "")), price_tier=str(row.get("price_tier", "")),
        memory_mib=_opt_float(row.get("memory_mib")),
        gpus_per_node=None if row.get("gpus_per_node") is None else int(row["gpus_per_node"]),
        scale_up_gbs_per_dir=_opt_float(row.get("scale_up_gbs_per_dir")),
        scale_out_gbs_per_dir=_opt_float(row.get("scale_out_gbs_per_dir")),
        default_mfu=_opt_float(row.get("default_mfu")),
        matmul_efficiency=_opt_float(row.get("matmul_efficiency")),
        devices_per_package=int(row.get("devices_per_package", 1)), origin=str(path))


def _check_text(where: str, row: dict[str, Any]) -> None:
    """No control character (escape sequences, NUL, bidi overrides; a note may still wrap lines)
    in any text of the row: names and notes are printed on terminals and written into proposals."""
    def texts(value: Any, key: str) -> Iterable[tuple[str, str]]:
        if isinstance(value, str):
            yield key, value
        elif isinstance(value, dict):
            for k, v in value.items():
                yield from texts(v, f"{key}.{k}")
        elif isinstance(value, list):
            for item in value:
                yield from texts(item, key)
    for key, text in texts(row, ""):
        if has_control(text.replace("\n", " ").replace("\t", " ")):  # a multi-line note may wrap
            raise CatalogError(f"{where}: field '{key.lstrip('.')}' = {printable(repr(text))} holds a "
                               "control character; catalog text must be printable")


def _check_positive(where: str, key: str, value: Any, bounds: tuple[float, float] | None = None) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value <= 0:
        raise CatalogError(f"{where}: field '{key}' = {value!r} must be a positive number")
    if bounds is not None and not bounds[0] <= value <= bounds[1]:
        raise CatalogError(f"{where}: field '{key}' = {value!r} is outside the plausible range "
                           f"{bounds[0]:g} to {bounds[1]:g} (check its unit)")


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)
