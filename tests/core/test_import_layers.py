"""The import graph of sagd_core: every module in a layer, no upward arrow between layers, no
import circle, and benchmark libraries only under sagd_core/bench/ (docs/ARCHITECTURE.md); and
sampling plans built and cut only by sagd_core/schedules.py."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]  # tests/core/ -> repo root
PKG = ROOT / "sagd_core"

#: Lowest first. A module's layer is the longest prefix that matches it; equal ranks may import
#: each other (cycles are caught separately).
LAYERS: list[tuple[str, int]] = [
    ("sagd_core.spectral", 0),
    ("sagd_core.devices", 0),
    ("sagd_core.checkpoint", 0),
    ("sagd_core.models", 0),
    ("sagd_core.schedules", 1),
    ("sagd_core.diffusion", 2),
    ("sagd_core.samplers", 3),
    ("sagd_core.data", 4),
    ("sagd_core.metrics", 5),
    ("sagd_core.schedule_design", 6),  # closed-form math, model-free
    ("sagd_core.training", 7),
    ("sagd_core.planning", 8),  # plans fitted for a trained model
    ("sagd_core.restore", 9),  # the contract: request, result, errors, inputs, report, models
    ("sagd_core.analysis", 10),  # band detection (needs restore.inputs / errors)
    ("sagd_core.restore.methods", 11),
    ("sagd_core.restore.plans", 12),
    ("sagd_core.restore.learned", 12),  # the learned methods on a device (torch)
    ("sagd_core.restore.engine", 12),
    ("sagd_core.restore.auto", 12),  # which route auto takes (the dispatcher's helper)
    ("sagd_core.calibration", 13),  # calls restore()
    ("sagd_core.bench", 14),
    ("sagd_core.cli", 15),
]
#: Package facades (their __init__) sit at the top of their package: they may import any of their
#: own submodules, and nothing inside the package may import them.
FACADES = {"sagd_core.restore": 12}
#: (importer, imported) pairs allowed to point upward; keep empty.
ALLOWED_UPWARD: set[tuple[str, str]] = set()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in PKG.rglob("*.py")}


def rank(module: str) -> int:
    if module in FACADES:
        return FACADES[module]
    best = max(
        (p for p, _ in LAYERS if module == p or module.startswith(p + ".")), key=len, default=None
    )
    if best is None:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS")
    return dict(LAYERS)[best]


def imports(module: str) -> list[tuple[str, int, str]]:
    """``(imported module, line, kind)``; kind: ``top`` | ``lazy`` (inside a function) |
    ``typing`` (under ``if TYPE_CHECKING``). ``from pkg import name`` counts as importing
    ``pkg.name`` when that is a module, else ``pkg``."""
    path = MODULES[module]
    is_pkg = path.name == "__init__.py"
    out: list[tuple[str, int, str]] = []

    def resolve(node: ast.ImportFrom) -> str:
        if not node.level:
            return node.module or ""
        base = module.split(".") if is_pkg else module.split(".")[:-1]
        base = base[: len(base) - node.level + 1]
        return ".".join(base + ([node.module] if node.module else []))

    def visit(node: ast.AST, kind: str) -> None:
        for child in ast.iter_child_nodes(node):
            k = kind
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                k = "lazy" if kind == "top" else kind
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for stmt in child.body:
                    visit_stmt(stmt, "typing")
                for stmt in child.orelse:
                    visit_stmt(stmt, kind)
                continue
            visit_stmt(child, k)

    def visit_stmt(stmt: ast.AST, kind: str) -> None:
        if isinstance(stmt, ast.Import):
            out.extend(
                (a.name, stmt.lineno, kind) for a in stmt.names if a.name.startswith("sagd_core")
            )
        elif isinstance(stmt, ast.ImportFrom):
            target = resolve(stmt)
            if target.startswith("sagd_core"):
                for alias in stmt.names:
                    sub = f"{target}.{alias.name}"
                    out.append((sub if sub in MODULES else target, stmt.lineno, kind))
        visit(stmt, kind)

    visit(ast.parse(path.read_text(encoding="utf-8")), "top")
    return out


EDGES = {m: imports(m) for m in MODULES}


def test_every_module_has_a_layer() -> None:
    for module in MODULES:
        if module != "sagd_core":
            rank(module)


def test_no_arrow_points_upward() -> None:
    bad = []
    for src, targets in EDGES.items():
        if src == "sagd_core":
            continue
        for dst, line, kind in targets:
            if src in FACADES and dst.startswith(src + "."):
                continue  # a facade re-exports its own package
            if rank(dst) > rank(src) and (src, dst) not in ALLOWED_UPWARD:
                bad.append(f"{MODULES[src].relative_to(ROOT)}:{line} ({kind}) imports {dst}")
    assert not bad, "upward imports:\n" + "\n".join(sorted(set(bad)))


BENCH_NAMES = ("bench", "latency", "figures", "plot")


def test_no_core_module_imports_a_benchmark() -> None:
    """Benchmark libraries live in sagd_core/bench/ only, and only bench/ and cli/ import them."""
    outside = ("sagd_core.bench", "sagd_core.cli")
    stray = [
        m
        for m in MODULES
        if not m.startswith(outside) and any(w in m.rsplit(".", 1)[-1] for w in BENCH_NAMES)
    ]
    assert not stray, f"benchmark-like modules outside sagd_core/bench/: {stray}"
    bad = sorted(
        {
            f"{src}:{line} -> {dst}"
            for src, targets in EDGES.items()
            if not src.startswith(outside)
            for dst, line, _ in targets
            if dst.startswith("sagd_core.bench")
        }
    )
    assert not bad, bad


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:  # Tarjan
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return found


@pytest.mark.parametrize("kinds", [{"top", "lazy", "typing"}], ids=["all"])
def test_no_import_circle(kinds: set[str]) -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for src, targets in EDGES.items():
        graph.setdefault(src, set())
        for dst, _, kind in targets:
            if kind in kinds and dst != src:
                graph[src].add(dst)
                graph.setdefault(dst, set())
    cycles = _cycles(graph)
    assert not cycles, f"import circles: {cycles}"


def test_no_circle_at_import_time() -> None:
    """Top-level imports only, plus what Python runs implicitly: importing ``a.b.c`` runs
    ``a/__init__`` and ``a/b/__init__`` first."""
    graph: dict[str, set[str]] = defaultdict(set)
    for src, targets in EDGES.items():
        graph.setdefault(src, set())
        for dst, _, kind in targets:
            if kind != "top":
                continue
            parts = dst.split(".")
            for i in range(2, len(parts) + 1):
                parent = ".".join(parts[:i])
                if parent in MODULES and parent != src and not src.startswith(parent + "."):
                    graph[src].add(parent)
                    graph.setdefault(parent, set())
    cycles = _cycles(graph)
    assert not cycles, f"import-time circles: {cycles}"


def test_the_restore_contract_imports_no_torch() -> None:
    """The API builds and validates ``RestoreRequest`` without torch (a subprocess: this one
    has torch loaded already)."""
    code = (
        "import sys, sagd_core.restore, sagd_core.restore.request;"
        "print(sorted(m for m in ('torch', 'sagd_core.restore.engine') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


#: Library code checked for hand-made plans: the package and every other importer of it.
LIBRARY_DIRS = ("sagd_core", "service", "worker", "benchmarks", "scripts")


def _is_name(node: ast.expr, name: str) -> bool:
    text = ast.unparse(node)
    return text == name or text.endswith("." + name)


def test_sampling_plans_are_cut_only_by_sampling_plan() -> None:
    """Nothing outside sagd_core/schedules.py builds a ``SamplingPlan(...)`` by hand (cuts are
    ``SamplingPlan`` methods), subclasses ``Schedule`` (the former ``PlannedSchedule``
    work-around) or swaps a model's schedule with ``replace(model, schedule=...)``."""
    own = PKG / "schedules.py"
    bad = []
    for top in LIBRARY_DIRS:
        for path in sorted((ROOT / top).rglob("*.py")):
            if path == own:
                continue
            where = path.relative_to(ROOT)
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call) and _is_name(node.func, "SamplingPlan"):
                    bad.append(f"{where}:{node.lineno} builds a SamplingPlan")
                if (
                    isinstance(node, ast.Call)
                    and _is_name(node.func, "replace")
                    and any(k.arg == "schedule" for k in node.keywords)
                ):
                    bad.append(f"{where}:{node.lineno} replaces a model's schedule")
                if isinstance(node, ast.ClassDef) and any(
                    _is_name(b, "Schedule") for b in node.bases
                ):
                    bad.append(f"{where}:{node.lineno} subclasses Schedule")
    assert not bad, "\n".join(bad)
