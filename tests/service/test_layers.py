"""The service's two layers: the job layer (``service.jobs``) and the workers never import the HTTP
layer (``service.api``) or FastAPI/Starlette/uvicorn, so a worker image needs none of them."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HTTP = ("fastapi", "starlette", "uvicorn", "service.api")


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every absolute import in ``path``, at any depth (functions included)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def test_the_job_layer_and_the_workers_import_nothing_of_http() -> None:
    files = [*(REPO / "service" / "jobs").rglob("*.py"), *(REPO / "worker").rglob("*.py")]
    assert len(files) > 10
    bad = [
        f"{path.relative_to(REPO)}:{line} imports {name}"
        for path in files
        for line, name in imported_modules(path)
        if name == "service" or name.startswith(HTTP)
    ]
    assert not bad, "\n".join(bad)


def test_importing_the_worker_loads_no_http_module() -> None:
    """At run time too (a subprocess, since this one has FastAPI loaded)."""
    code = (
        "import sys, importlib, pkgutil, service.jobs;"
        "[importlib.import_module(f'service.jobs.{m.name}') "
        " for m in pkgutil.iter_modules(service.jobs.__path__)];"
        "import worker.tasks, worker.jobs, worker.engine;"
        f"print(sorted(m for m in sys.modules if m.startswith({HTTP!r})))"
    )
    env = {"SAGD_ENV": "development", "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", out.stdout
