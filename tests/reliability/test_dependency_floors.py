"""Dependency floors that the reliability facts rely on (RELIABILITY.md), read from what is
installed, and no unsafe deserialisation in the code that handles user files.

* kombu ≥ 5.4: older workers stopped consuming after a Redis restart.
* python-multipart ≥ 0.0.27: fixes for hostile multipart bodies.
* torch ≥ 2.6: ``torch.load`` defaults to ``weights_only=True`` (the code never calls it anyway).
"""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FLOORS = {"kombu": (5, 4), "python-multipart": (0, 0, 27), "torch": (2, 6), "celery": (5, 4)}


def release(text: str) -> tuple[int, ...]:
    """The numeric release of a version string: ``"2.13.0+cpu"`` → ``(2, 13, 0)``."""
    match = re.match(r"\d+(?:\.\d+)*", text)
    if match is None:
        raise ValueError(f"not a version: {text!r}")
    return tuple(int(part) for part in match.group(0).split("."))


def test_release_parsing() -> None:
    assert release("2.13.0+cpu") == (2, 13, 0)
    assert release("0.0.27") > release("0.0.9")
    assert release("5.4.0rc1") == (5, 4, 0)
    with pytest.raises(ValueError):
        release("dev")


@pytest.mark.parametrize(("package", "floor"), sorted(FLOORS.items()))
def test_installed_version_meets_the_floor(package: str, floor: tuple[int, ...]) -> None:
    installed = version(package)
    assert release(installed) >= floor, f"{package} {installed} is older than {floor}"


def test_pyproject_declares_the_floors() -> None:
    text = (REPO / "pyproject.toml").read_text()
    for package, floor in FLOORS.items():
        found = re.search(rf'"{re.escape(package)}\s*(>=|==)\s*([0-9][^"]*)"', text)
        assert found, f"{package} is not pinned in pyproject.toml"
        assert release(found.group(2)) >= floor, found.group(0)


def test_no_pickle_based_loading_in_the_code() -> None:
    offenders = []
    for path in sorted(REPO.glob("[sw]*/**/*.py")):
        if path.parts[len(REPO.parts)] not in ("sagd_core", "service", "worker"):
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            unsafe = (
                ("torch.load(" in code and "weights_only=True" not in code)
                or re.search(r"\bpickle\.loads?\(", code)
                or ("np.load(" in code and "allow_pickle=False" not in code)
            )
            if unsafe:
                offenders.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert offenders == []
