"""Tests that guard the house: the import rules of the layout (README "Layout"), and the CLI
contract that every command has --help with an Example: and prints one JSON object with --json."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from budget.cli import main

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data"
WIRING = {"budget/wiring.py"}  # the one named place budget reaches into fits and experiments
HEAVY = ("torch", "mlflow", "matplotlib", "scipy", "pandas", "ray")
# Lower layers never import higher ones at module level (lazy imports inside functions may).
LAYERS = [("budget/errors.py", "budget/text.py"), ("budget/models/", "budget/hardware/", "budget/emit/"),
          ("budget/training/", "budget/scaling/", "budget/serving/", "budget/render.py"),
          ("budget/fixed_plan.py", "budget/validation/"), ("budget/planner/", "budget/plan_options.py"),
          ("budget/report/",), ("budget/wiring.py", "budget/api.py"), ("budget/cli/",)]


def imports(path: Path) -> list[tuple[str, bool]]:
    """(imported module, at module level?) for every import in a file; imports under
    `if TYPE_CHECKING:` are for the type checker only and are left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: list[tuple[str, bool]] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import):
                out.extend((a.name, top) for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and not child.level:
                out.append((child.module, top))
            inner = top and not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            visit(child, inner)

    visit(tree, True)
    return out


def files(package: str) -> list[tuple[str, Path]]:
    return [(p.relative_to(ROOT).as_posix(), p) for p in sorted((ROOT / package).rglob("*.py"))]


def root(module: str) -> str:
    return module.split(".")[0]


def layer_of(rel: str) -> int:
    return next(i for i, group in enumerate(LAYERS) for prefix in group if rel.startswith(prefix))


def module_file(module: str) -> str:
    path = ROOT / Path(*module.split("."))
    return (path.with_suffix(".py") if path.with_suffix(".py").exists() else path / "__init__.py") \
        .relative_to(ROOT).as_posix()


@pytest.mark.parametrize("rel,path", files("budget"), ids=lambda x: x if isinstance(x, str) else "")
def test_budget_reaches_fits_and_experiments_only_through_wiring_and_commands(rel, path):
    """No fits/experiments import in budget/ outside budget/wiring.py and the commands, and
    there only inside functions, so `import budget` and `budget plan` stay light."""
    for module, top in imports(path):
        if root(module) in ("fits", "experiments"):
            assert rel in WIRING or rel.startswith("budget/cli/"), f"{rel} imports {module}"
            assert not top, f"{rel} imports {module} at module level"


@pytest.mark.parametrize("rel,path", files("budget"), ids=lambda x: x if isinstance(x, str) else "")
def test_budget_imports_nothing_heavy_at_module_level(rel, path):
    heavy = [m for m, top in imports(path) if top and root(m) in HEAVY]
    assert not heavy, f"{rel} imports {heavy} at module level"


@pytest.mark.parametrize("rel,path", files("budget"), ids=lambda x: x if isinstance(x, str) else "")
def test_lower_layers_never_import_higher_ones(rel, path):
    if rel.endswith("__main__.py") or rel == "budget/__init__.py":
        return
    mine = layer_of(rel)
    for module, top in imports(path):
        if top and root(module) == "budget" and module != "budget":
            theirs = layer_of(module_file(module))
            assert theirs <= mine, f"{rel} (layer {mine}) imports {module} (layer {theirs})"


@pytest.mark.parametrize("rel,path", files("fits"), ids=lambda x: x if isinstance(x, str) else "")
def test_fits_imports_neither_budget_nor_experiments(rel, path):
    bad = [m for m, _ in imports(path) if root(m) in ("budget", "experiments")]
    assert not bad, f"{rel} imports {bad}"


def test_the_report_package_has_no_import_circle():
    """html, figures and calibration import sections, never build or each other."""
    leaves = ("html", "figures", "calibration", "sections")
    for name in leaves:
        for module, _ in imports(ROOT / "budget" / "report" / f"{name}.py"):
            if module.startswith("budget.report."):
                assert module == "budget.report.sections", f"report/{name}.py imports {module}"


# One cheap invocation per command; a new command must add one here (and keep --json to one object).
JSON_INVOCATIONS = {
    "plan": lambda tmp: ["--flops", "1e21", "--gpu", "h100"],
    "gpus": lambda tmp: [],
    "flops": lambda tmp: ["--n-layer", "2", "--d-model", "128"],
    "memory": lambda tmp: ["--params", "1e9", "--gpu", "h100"],
    "scale": lambda tmp: ["efficientnet", "--phi", "1"],
    "sweep": lambda tmp: ["--preset", "smoke", "--dry-run", "--tracking-uri", f"sqlite:///{tmp}/s.db"],
    "fit": lambda tmp: ["--csv", str(DATA / "chinchilla_svg_extracted_data.csv"), "--approach", "2",
                        "--bootstrap", "0"],
    "report": lambda tmp: ["--flops", "1e21", "--out", str(tmp / "proposal")],
    "energy": lambda tmp: [],
    "models": lambda tmp: [],
    "frontier": lambda tmp: ["--flops", "1e21"],
    "roofline": lambda tmp: ["--model", "llama-2-7b", "--gpu", "a100"],
    "serve": lambda tmp: ["--model", "llama-2-7b", "--gpu", "h100"],
    "validate": lambda tmp: [],
}
# Commands whose --json run costs seconds of real services, checked by a named test elsewhere.
COVERED_ELSEWHERE = {"ui": ("test_cli_ui.py", "test_ui_lands_on_the_experiments_runs_table_and_stops"),
                     "server": ("test_team.py",
                                "test_server_runs_on_postgres_on_loopback_and_keeps_its_password_off_command_lines")}


@pytest.mark.parametrize("name", sorted(main.commands))
def test_every_command_prints_one_json_object(name, tmp_path, monkeypatch):
    """(`--help` with an `Example:` for every command: tests/test_cli_help.py.)"""
    if name in COVERED_ELSEWHERE:
        test_file, test_name = COVERED_ELSEWHERE[name]
        source = (Path(__file__).parent / test_file).read_text(encoding="utf-8")
        assert f"def {test_name}(" in source and '"--json"' in source
        return
    assert name in JSON_INVOCATIONS, f"add a cheap --json invocation of 'budget {name}' here"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    result = CliRunner().invoke(main, [name, *JSON_INVOCATIONS[name](tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    text = result.stdout.strip()
    value, end = json.JSONDecoder().raw_decode(text)
    assert end == len(text), f"budget {name} --json printed more than one JSON value"
    assert isinstance(value, dict) and value
