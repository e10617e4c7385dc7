"""The README's examples run as written.

Every fenced ``sh``, ``bash``, ``console`` or ``json`` block of README.md is preceded by a marker
comment that says how it is checked (a block without one fails
:func:`test_every_example_block_is_marked`):

- ``<!-- example: run -->``: a ``console`` block (``$ `` starts a command, ``\\`` continues it,
  other lines are its output). The commands run in order, in one temporary folder holding
  ``.venv`` (this interpreter's environment) and ``examples/`` (the repository's), so the installed
  ``sagd`` runs exactly as a user types it from the repository root. A command whose shown output
  has an ``error:`` line must fail, every other one must succeed; every shown output line must
  appear in what the command prints, numbers aside (a measured time or residual differs from run
  to run) and progress bars aside.
- ``<!-- example: run-slow -->``: the same, for blocks that train (marked slow).
- ``<!-- example: config -->``: ``sagd train`` commands too long to run here; each runs with
  ``--print-config`` appended, which resolves every flag, preset and JSON config without training.
- ``<!-- example: service -->``: an ``sh`` block of ``curl`` calls against ``make serve``: the test
  starts ``python -m service.embedded`` (``make serve``'s command) on a free port with its own data
  folder and runs the block there, ``127.0.0.1:8000`` pointed at that port (integration, slow).
- ``<!-- example: band-spec -->``: a ``json`` band spec, which must validate and be well-posed.
- ``<!-- example: not run: REASON -->``: shown only, for the reason given.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from sagd_core.spectral.bands import parse_band_spec
from sagd_core.spectral.masks import check_spec_for_shape
from tests.harness import Proc, free_port, spawn, wait_http

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
FENCE = re.compile(r"^```(sh|bash|console|json)\n(.*?)^```", re.S | re.M)
MARKER = re.compile(r"<!-- example: (run|run-slow|config|service|band-spec|not run: .+) -->")
NUMBER = re.compile(r"\d+(?:\.\d+)?(?:e[-+]?\d+)?")
PROGRESS_BAR = re.compile(r"\d+%\|")
COMMAND_TIMEOUT_S = 600
DEFAULT_PORT = "127.0.0.1:8000"


@dataclass(frozen=True)
class Example:
    """One fenced block of the README and how it is checked."""

    kind: str
    language: str
    body: str
    line: int

    @property
    def where(self) -> str:
        return f"README.md line {self.line}"


@dataclass(frozen=True)
class Command:
    """A ``$ `` command of a console block and the output lines the README shows for it."""

    text: str
    shown: tuple[str, ...]


def readme_examples(text: str) -> list[Example]:
    """Every fenced shell or JSON block, with the kind its marker gives (``""``: no marker)."""
    examples = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = MARKER.fullmatch(before.strip())
        examples.append(
            Example(
                kind=marker.group(1) if marker else "",
                language=match.group(1),
                body=match.group(2),
                line=text.count("\n", 0, match.start()) + 1,
            )
        )
    return examples


def console_commands(body: str) -> list[Command]:
    """The commands of a console block, continuation lines joined, with their shown output."""
    commands: list[Command] = []
    current: list[str] = []
    shown: list[str] = []
    continued = False
    for line in body.splitlines():
        if continued:
            current.append(line)
        elif line.startswith("$ "):
            if current:
                commands.append(Command("\n".join(current), tuple(shown)))
            current, shown = [line[2:]], []
        elif current:
            shown.append(line)
        else:
            raise AssertionError(f"console block output before any command: {line!r}")
        continued = line.endswith("\\") and not shown
    if current:
        commands.append(Command("\n".join(current), tuple(shown)))
    return commands


def shape(line: str) -> str:
    """A line with every number replaced by ``#`` and outer blanks removed."""
    return NUMBER.sub("#", line.strip())


def json_documents(text: str) -> list[Any]:
    """The JSON documents printed one after another in ``text``."""
    decoder, out, at = json.JSONDecoder(), [], 0
    while (at := text.find("{", at)) >= 0:
        value, at = decoder.raw_decode(text, at)
        out.append(value)
    return out


def examples_of(kind: str) -> list[Example]:
    return [e for e in readme_examples(README.read_text(encoding="utf-8")) if e.kind == kind]


@pytest.fixture()
def workdir(tmp_path: Path) -> Path:
    """A folder laid out like the repository root for the examples: ``.venv`` and ``examples``."""
    (tmp_path / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    (tmp_path / "examples").symlink_to(REPO / "examples", target_is_directory=True)
    return tmp_path


def run_shell(
    script: str, cwd: Path, timeout_s: float = COMMAND_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    """Run ``script`` with bash in ``cwd``."""
    return subprocess.run(
        ["bash", "-c", script],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def check_command(command: Command, cwd: Path) -> None:
    """Run one console command and compare its output with what the README shows."""
    done = run_shell(command.text, cwd)
    status, output = done.returncode, done.stdout + done.stderr
    should_fail = any("error:" in line for line in command.shown)
    assert (status != 0) == should_fail, (
        f"`{command.text}` exited {status}, expected "
        f"{'a failure' if should_fail else 'success'}:\n{output[-3000:]}"
    )
    printed = {shape(line) for line in re.split(r"[\r\n]", output)}
    for line in command.shown:
        if PROGRESS_BAR.search(line) or not line.strip():
            continue
        assert shape(line) in printed, (
            f"`{command.text}` did not print the README's line\n  {line}\nbut:\n{output[-3000:]}"
        )


def run_console_examples(kind: str, cwd: Path) -> int:
    """Run every console block of ``kind`` in order in ``cwd``; the number of commands run."""
    count = 0
    for example in examples_of(kind):
        assert example.language == "console", f"{example.where}: {kind} needs a console block"
        for command in console_commands(example.body):
            check_command(command, cwd)
            count += 1
    return count


# ---------------------------------------------------------------------------------------------
# The parser itself
# ---------------------------------------------------------------------------------------------


def test_console_blocks_split_into_commands_and_their_output() -> None:
    body = "$ sagd a \\\n    --flag x\nout 1\nout 2\n$ sagd b\n"
    assert console_commands(body) == [
        Command("sagd a \\\n    --flag x", ("out 1", "out 2")),
        Command("sagd b", ()),
    ]


def test_output_is_compared_numbers_aside() -> None:
    assert shape("residual 3.36e-16, mean time 0.02 s") == shape("residual 1e-15, mean time 12 s")
    assert shape("wrote 2 region(s)") != shape("wrote 2 file(s)")


def test_every_example_block_is_marked() -> None:
    examples = readme_examples(README.read_text(encoding="utf-8"))
    unmarked = [e.where for e in examples if not e.kind]
    assert not unmarked, f"mark these blocks with <!-- example: … --> (see {__name__}): {unmarked}"
    kinds = {e.kind for e in examples}
    assert {"run", "run-slow", "config", "service", "band-spec"} <= kinds


# ---------------------------------------------------------------------------------------------
# The examples
# ---------------------------------------------------------------------------------------------


def test_the_band_spec_example_is_valid_and_well_posed() -> None:
    (example,) = examples_of("band-spec")
    spec = parse_band_spec(example.body)
    report = check_spec_for_shape(spec, 256, 256)
    assert not report.empty_regions and not report.covers_dc


def test_the_example_image_is_what_its_script_makes() -> None:
    sys.path.insert(0, str(REPO / "examples"))
    try:
        from make_camera_interference import DEFAULT_OUTPUT, camera_interference
    finally:
        sys.path.remove(str(REPO / "examples"))
    made = camera_interference()
    with Image.open(DEFAULT_OUTPUT) as shipped:
        assert shipped.mode == "L"
        assert np.array_equal(made, np.asarray(shipped))
    assert DEFAULT_OUTPUT.stat().st_size < 200 * 1024


def test_the_cli_examples_run_as_shown(workdir: Path) -> None:
    assert run_console_examples("run", workdir) >= 4
    report = json.loads((workdir / "restored" / "camera_interference.report.json").read_text())
    assert report["method"] == "notch"
    assert [b["action"] for b in report["bands"]] == ["omitted"] * len(report["bands"])


def test_the_train_examples_resolve_their_configs(workdir: Path) -> None:
    commands = [c for e in examples_of("config") for c in console_commands(e.body)]
    assert commands
    for command in commands:
        assert re.match(r"\.venv/bin/sagd train\b", command.text), command.text
        done = run_shell(command.text + " --print-config", workdir)
        assert done.returncode == 0, f"`{command.text}`:\n{done.stderr[-3000:]}"
        config = json.loads(done.stdout)
        assert {"model", "noise"} <= set(config), sorted(config)


@pytest.mark.slow
def test_the_training_examples_run_as_shown(workdir: Path) -> None:
    assert run_console_examples("run-slow", workdir) >= 4
    assert len(list((workdir / "runs" / "fast").glob("*.png"))) >= 16


@pytest.mark.integration
@pytest.mark.slow
def test_the_service_example_runs_against_make_serve(workdir: Path) -> None:
    (example,) = examples_of("service")
    port = free_port()
    env = {**os.environ, "SAGD_STORAGE_ROOT": str(workdir / "data"), "SAGD_PORT": str(port)}
    for name in ("SAGD_API_KEYS", "SAGD_REDIS_URL"):
        env.pop(name, None)
    log = workdir / "serve.log"
    server = Proc(
        spawn([sys.executable, "-m", "service.embedded", "--no-demo"], log, env),
        "make serve",
        log,
        grace_s=60,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(url, "/readyz", timeout_s=180, proc=server)
        script = "set -euo pipefail\n" + example.body.replace(DEFAULT_PORT, f"127.0.0.1:{port}")
        done = run_shell(script, workdir, timeout_s=180)
        output = done.stdout
        assert done.returncode == 0, f"{done.stderr[-3000:]}\n--- make serve:\n{server.tail()}"
        with Image.open(workdir / "restored.png") as restored:
            assert restored.size == (256, 256)
        job, report = json_documents(output)  # the job as polled, then the report
        assert job["kind"] == "restore" and job["state"] in ("queued", "running", "succeeded")
        assert report["method"] == "notch" and report["bands"][0]["action"] == "omitted"
    finally:
        server.stop()
