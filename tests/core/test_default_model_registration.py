"""``make serve`` registers the shipped default model (``service.embedded.ensure_default_model``):
as ``default`` v1, a full RGB model, once; weights checked through safetensors only, without torch
in the API process; a broken or missing checkpoint registers nothing."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from service import embedded
from service.jobs.registry import ModelRegistry
from service.jobs.storage import Storage
from service.settings import Settings
from tests.harness import REPO

SHIPPED = REPO / "sagd_core" / "models" / "default" / "checkpoint"


def test_the_shipped_model_is_found_in_the_installed_package() -> None:
    found = embedded.shipped_default_model()
    assert found is not None and found.resolve() == SHIPPED.resolve()


def test_registered_once_as_the_settings_default(tmp_path: Path) -> None:
    storage = Storage(tmp_path)
    assert embedded.ensure_default_model(storage) == 1
    registry = ModelRegistry(storage)
    info = registry.describe("default")
    assert info.kind == "full" and info.channels == 3
    assert Settings(_env_file=None).default_model == "default"  # type: ignore[call-arg]
    version, folder = registry.resolve("default")
    assert version == 1
    assert sorted(p.name for p in folder.iterdir()) == sorted(embedded.DEFAULT_MODEL_FILES)
    assert (folder / "ema.safetensors").read_bytes() == (SHIPPED / "ema.safetensors").read_bytes()
    assert SHIPPED.is_dir()  # copied, not moved out of the package
    assert embedded.ensure_default_model(storage) is None  # already there
    assert [v.version for v in registry.list_models()[0].versions] == [1]


def test_a_broken_or_missing_checkpoint_registers_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(SHIPPED, broken)
    (broken / "ema.safetensors").write_bytes(b"\x80\x04not a safetensors file")  # a pickle
    storage = Storage(tmp_path / "storage")
    with pytest.raises(ValueError, match="safetensors"):
        embedded.ensure_default_model(storage, source=broken)
    assert "default" not in ModelRegistry(storage).load()["models"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError):
        embedded.ensure_default_model(storage, source=tmp_path / "empty")
    assert "default" not in ModelRegistry(storage).load()["models"]
    assert not (tmp_path / "storage" / "models" / "default" / ".staging-embedded").exists()
    monkeypatch.setattr(embedded, "shipped_default_model", lambda: None)
    with caplog.at_level("WARNING"):
        assert embedded.ensure_default_model(storage) is None
    assert "make default-model" in caplog.text
    assert "default" not in ModelRegistry(storage).load()["models"]


def test_registration_does_not_import_torch(tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from service import embedded;"
        "from service.jobs.storage import Storage;"
        f"assert embedded.ensure_default_model(Storage(Path({str(tmp_path)!r}))) == 1;"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"
