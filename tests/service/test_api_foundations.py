"""Settings, storage paths, webhooks, zips, and the API's import footprint."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from uuid import uuid4

import pytest
from pydantic import ValidationError

from service.jobs.storage import Storage, UnsafePathError
from service.jobs.webhooks import WebhookTargetError, check_callback_url, sign, verify
from service.jobs.zips import ZipRejected, read_zip_images
from service.settings import DEV_WEBHOOK_SECRET, Settings, hash_api_key
from tests.harness import make_zip as _zip
from tests.harness import png_bytes

REPO = Path(__file__).resolve().parents[2]
DIGEST = hash_api_key("k")


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def test_settings_refuse_unsafe_production() -> None:
    with pytest.raises(ValidationError, match="SAGD_API_KEYS"):
        settings(env="production", webhook_secret="s3cret")
    with pytest.raises(ValidationError, match="WEBHOOK_SECRET"):
        settings(env="production", api_keys=[DIGEST])
    with pytest.raises(ValidationError, match="development"):
        settings(env="production", api_keys=[DIGEST], webhook_secret="x", auth_disabled=True)
    ok = settings(env="production", api_keys=[DIGEST], webhook_secret="s3cret")
    assert ok.auth_enabled
    dev = settings()
    assert not dev.auth_enabled and dev.webhook_secret.get_secret_value() == DEV_WEBHOOK_SECRET
    assert settings(api_keys=[DIGEST]).auth_enabled


def test_settings_parse_and_check_keys_and_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAGD_API_KEYS", f" {DIGEST.upper()} , {hash_api_key('j')} ")
    assert Settings(_env_file=None).api_keys == [DIGEST, hash_api_key("j")]  # type: ignore[call-arg]
    monkeypatch.setenv("SAGD_API_KEYS", "plain-key-not-a-hash")
    with pytest.raises(ValidationError, match="SHA-256"):
        Settings(_env_file=None)  # type: ignore[call-arg]
    monkeypatch.delenv("SAGD_API_KEYS")
    with pytest.raises(ValidationError, match="VISIBILITY_TIMEOUT"):
        settings(visibility_timeout_s=600, restore_time_limit_s=900, restore_soft_time_limit_s=800)
    with pytest.raises(ValidationError, match="soft"):
        settings(restore_soft_time_limit_s=100, restore_time_limit_s=100)


@pytest.mark.parametrize(
    "parts",
    [
        ("..",),
        ("jobs", ".."),
        ("/etc",),
        ("a\x00b",),
        ("x" * 4096,),
        ("a/b",),
        ("",),
        ("a\\b",),
        ("a\nb",),
    ],
)
def test_storage_refuses_unsafe_parts(tmp_path: Path, parts: tuple[str, ...]) -> None:
    storage = Storage(tmp_path / "root")
    with pytest.raises(UnsafePathError):
        storage.path(*parts)


def test_storage_symlink_escape_and_atomic_writes(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "root")
    (storage.root / "link").symlink_to(tmp_path)
    with pytest.raises(UnsafePathError):
        storage.path("link", "x")
    with pytest.raises(UnsafePathError):
        storage.write_bytes(tmp_path / "outside.txt", b"x")
    with pytest.raises(UnsafePathError):
        storage.job_file(uuid4(), "../../x")
    job = uuid4()
    target = storage.job_dir(job, create=True) / "result.png"
    storage.write_bytes(target, b"one")
    storage.write_bytes(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in target.parent.iterdir()] == ["result.png"]  # no temp files left
    assert not (tmp_path / "outside.txt").exists()


def test_new_job_inputs_never_follow_or_overwrite(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "root")
    job = uuid4()
    storage.write_new(job, "input.png", b"data")
    assert storage.job_file(job, "input.png").read_bytes() == b"data"
    with pytest.raises(FileExistsError):  # an existing file is not overwritten
        storage.write_new(job, "input.png", b"other")
    planted = uuid4()
    storage.job_dir(planted, create=True)
    (storage.job_dir(planted) / "input.png").symlink_to(tmp_path / "outside.png")
    with pytest.raises(FileExistsError):  # nor is a planted link followed
        storage.write_new(planted, "input.png", b"x")
    assert not (tmp_path / "outside.png").exists()
    with pytest.raises(UnsafePathError):
        storage.write_new(job, "../x", b"x")
    with pytest.raises(ValueError):
        storage.write_new("../../etc", "input.png", b"x")  # type: ignore[arg-type]


def test_sweeper_removes_only_old_inactive_jobs(tmp_path: Path) -> None:
    storage = Storage(tmp_path)
    old_done, old_active, fresh = uuid4(), uuid4(), uuid4()
    for job in (old_done, old_active, fresh):
        storage.job_dir(job, create=True)
    long_ago = time.time() - 10_000
    for job in (old_done, old_active):
        os.utime(storage.job_dir(job), (long_ago, long_ago))
    removed = storage.sweep_jobs(3600, lambda job: job == old_active)
    assert removed == 1
    assert not storage.job_dir(old_done).exists()
    assert storage.job_dir(old_active).exists() and storage.job_dir(fresh).exists()


def test_webhook_signature_roundtrip() -> None:
    body = b'{"id": "x"}'
    header = sign("secret", body)
    assert verify("secret", body, header)
    assert not verify("other", body, header)
    assert not verify("secret", body + b" ", header)
    assert not verify("secret", body, sign("secret", body, int(time.time()) - 3600))
    assert not verify("secret", body, "garbage")


def test_webhook_targets() -> None:
    for url in (
        "http://127.0.0.1/x",
        "http://[::1]/x",
        "http://169.254.169.254/latest",
        "http://192.168.1.1/",
        "http://[::ffff:10.0.0.1]/",
        "http://0.0.0.0/",
        "file:///etc/passwd",
        "http://user:pw@93.184.216.34/",
        "http:///nohost",
        "http://93.184.216.34:99999/",
    ):
        with pytest.raises(WebhookTargetError):
            check_callback_url(url, allow_private=False)
    assert check_callback_url("https://93.184.216.34/hook", allow_private=False)
    assert check_callback_url("http://127.0.0.1:8080/x", allow_private=True)


def test_zip_bounds() -> None:
    bounds = {"max_entries": 10, "max_total_bytes": 1 << 20, "max_member_bytes": 1 << 19}
    members = read_zip_images(
        _zip(
            {
                "b.png": png_bytes(),
                "a/c.png": png_bytes(),
                "x.txt": b"t",
                ".hidden.png": png_bytes(),
            }
        ),
        **bounds,
    )
    assert [m.name for m in members] == ["c.png", "b.png"]
    for bad in (
        {"/abs.png": png_bytes()},
        {"a/../../x.png": png_bytes()},
        {"C:/x.png": png_bytes()},
    ):
        with pytest.raises(ZipRejected):
            read_zip_images(_zip(bad), **bounds)
    with pytest.raises(ZipRejected, match="entries"):
        read_zip_images(_zip({f"{i}.png": png_bytes() for i in range(11)}), **bounds)
    bomb = _zip({"big.png": b"\x89PNG\r\n\x1a\n" + b"\0" * (2 << 20)})  # compresses to ~2 KB
    with pytest.raises(ZipRejected) as info:
        read_zip_images(bomb, **bounds)
    assert info.value.status == 413
    with pytest.raises(ZipRejected):
        read_zip_images(b"PK\x03\x04" + b"\0" * 100, **bounds)


def test_zip_junk_behind_an_image_signature_is_refused_before_inflating() -> None:
    """A member whose header does not parse is refused from its first bytes: memory stays far
    below the member's expanded size (30 MiB of zeros here)."""
    bomb = _zip({"big.png": b"\x89PNG\r\n\x1a\n" + b"\0" * (30 << 20)})
    bounds = {"max_entries": 10, "max_total_bytes": 1 << 30, "max_member_bytes": 32 << 20}
    tracemalloc.start()
    try:
        with pytest.raises(ZipRejected, match="not a readable PNG header") as info:
            read_zip_images(bomb, **bounds)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert info.value.status == 422
    assert peak < 4 << 20, peak  # bytes allocated while reading: not the 30 MiB member


def test_importing_the_api_does_not_import_torch() -> None:
    code = (
        "import sys, service.api.app, service.api.routes.restorations;"
        "service.api.app.create_app;"
        "bad = [m for m in ('torch', 'worker', 'sagd_core.restore.engine',"
        " 'sagd_core.restore.models', 'sagd_core.training')"
        " if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
