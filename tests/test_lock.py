"""requirements.lock pins every dependency pyproject.toml declares, and this environment has them.

When this fails after a change to pyproject.toml, run ``make lock`` (README, "Install and test").
"""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]


def locked_versions() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        assert sep and ";" not in version, f"not an exact pin: {line!r}"
        pins[canonicalize_name(name)] = Version(version.strip())
    return pins


def declared_requirements() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    lines = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    return [Requirement(line) for line in lines]


def test_the_lock_pins_every_declared_dependency_within_its_range() -> None:
    pins = locked_versions()
    for requirement in declared_requirements():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is declared but not locked: run `make lock`"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{name}=={pins[name]} in requirements.lock is outside {requirement}: run `make lock`"
        )


def test_torch_is_pinned_to_the_public_release() -> None:
    """The lock names torch's release, not the local CPU build it was resolved from."""
    assert locked_versions()["torch"] == Version("2.13.0")


def test_this_environment_was_installed_from_the_lock() -> None:
    """Every locked package is installed at its locked version (a local build label such as
    torch's ``+cpu`` aside), so the suite runs on exactly the versions CI runs."""
    wrong = {}
    for name, pinned in locked_versions().items():
        try:
            installed = Version(metadata.version(name))
        except metadata.PackageNotFoundError:
            wrong[name] = (str(pinned), "missing")
            continue
        if installed.public != pinned.public:
            wrong[name] = (str(pinned), str(installed))
    assert not wrong, f"locked vs installed: {wrong}; run `make install`"


def test_every_install_path_uses_the_lock() -> None:
    """``make install``/``test``/``serve`` (the venv stamp), the Dockerfile and CI install the
    locked versions."""
    makefile = (REPO / "Makefile").read_text()
    assert "LOCK    := requirements.lock" in makefile
    assert "$(STAMP): pyproject.toml $(LOCK)" in makefile
    assert "pip install --quiet -r $(LOCK)" in makefile
    for target in ("test", "serve", "install"):
        line = next(x for x in makefile.splitlines() if x.startswith(f"{target}:"))
        assert "$(STAMP)" in line or line == "test: lint", line
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "COPY pyproject.toml README.md requirements.lock ./" in dockerfile
    assert "-c requirements.lock ." in dockerfile
    assert "make test" in (REPO / ".ci" / "run").read_text()
