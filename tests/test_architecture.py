"""The package's shape: one-way layers, no import circles, fit kinds read in one place.

The layers contract lives in ``pyproject.toml`` (``[tool.importlinter]``) and is checked here with
import-linter; the circle check counts imports made inside functions too, which a circle could
otherwise hide behind.
"""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "bayescale"

LONG_MODULES = {
    # one concept each, kept whole on purpose
    "core/laws.py": "every law as a pure function next to its closed-form optimum",
    "core/runs.py": "the runs table: column recognition, validation and filters of one table",
    "core/compiled.py": "the on-disk compile cache: keys, locking, publishing, loading",
    "answers/plots.py": "the figures of one fit, sharing axes, bands and reference lines",
}


def _modules() -> dict[str, Path]:
    mods = {}
    for f in PKG.rglob("*.py"):
        parts = list(f.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = f
    return mods


def _imports(mods) -> dict[str, set[str]]:
    edges = {m: set() for m in mods}
    for m, f in mods.items():
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
            else:
                continue
            for t in targets:
                while t and t not in mods:
                    t = t.rpartition(".")[0]
                if t and t != m and t.startswith("bayescale"):
                    edges[m].add(t)
    return edges


def test_layers_contract_holds():
    pytest.importorskip("importlinter")
    # in a child process: import-linter configures logging, which would silence this session's
    code = ("import sys; from importlinter.cli import lint_imports; "
            f"sys.exit(lint_imports(config_filename={str(ROOT / 'pyproject.toml')!r}, "
            "no_cache=True, no_logo=True))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr


def test_no_import_circle_counting_imports_inside_functions():
    mods = _modules()
    edges = _imports(mods)
    # a package re-exporting its own submodules is no circle of substance
    for m in mods:
        edges[m] = {t for t in edges[m] if not t.startswith(m + ".")}
    state, stack, circles = {}, [], []

    def visit(v):
        state[v] = 1
        stack.append(v)
        for w in edges[v]:
            if state.get(w) == 1:
                circles.append(stack[stack.index(w):] + [w])
            elif w not in state:
                visit(w)
        stack.pop()
        state[v] = 2

    for v in sorted(mods):
        if v not in state:
            visit(v)
    assert not circles, "import circles: " + " | ".join(" -> ".join(c) for c in circles)


def test_fit_kind_is_tested_only_in_the_fits_layer():
    pattern = re.compile(r"is_ensemble\(|is_pooled\(|is_accuracy\(|"
                         r"\"bayescale_(families|ensemble|accuracy)\"|"
                         r"ENSEMBLE_ATTR|FAMILIES_ATTR|ACCURACY_ATTR")
    offenders = []
    for f in PKG.rglob("*.py"):
        rel = f.relative_to(PKG).as_posix()
        if rel.startswith("fits/") or rel in ("ensemble.py", "families.py", "plots.py"):
            continue  # the fits layer, and the facades that re-export its names
        for i, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line):
                offenders.append(f"{rel}:{i}: {line.strip()}")
    assert not offenders, "fit-kind checks outside bayescale/fits:\n" + "\n".join(offenders)


def test_modules_stay_small_unless_one_concept():
    long = {}
    for f in PKG.rglob("*.py"):
        rel = f.relative_to(PKG).as_posix()
        n = len(f.read_text(encoding="utf-8").splitlines())
        if n > 820 and rel not in LONG_MODULES:
            long[rel] = n
    assert not long, f"modules over ~800 lines (split them, or say why in LONG_MODULES): {long}"


def test_package_imports_do_not_load_pymc_or_matplotlib():
    code = ("import sys, bayescale, bayescale.fits, bayescale.workflows.fit; "
            "print(sorted(m for m in ('pymc', 'matplotlib', 'arviz') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
