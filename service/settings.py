"""Service and worker settings (pydantic-settings, ``SAGD_`` environment prefix).

One singleton (:func:`get_settings`) read by the API, the workers and the embedded runner. The
validator refuses unsafe defaults outside development: authentication must be on with at least one
key, and the webhook signing secret must not be the development one.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEV_WEBHOOK_SECRET = "sagd-development-webhook-secret"  # refused outside development
MiB = 1024 * 1024


def hash_api_key(key: str) -> str:
    """The stored form of an API key: its SHA-256 hex digest."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class Settings(BaseSettings):
    """Everything configurable, from ``SAGD_*`` variables (or a ``.env`` file)."""

    model_config = SettingsConfigDict(env_prefix="SAGD_", env_file=".env", extra="ignore")

    env: Literal["development", "production"] = "development"
    storage_root: Path = Path("var/sagd")
    redis_url: str = "redis://127.0.0.1:6379/0"

    # Authentication: SHA-256 hex digests of the accepted keys (comma separated in the env).
    api_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)
    auth_disabled: bool | None = None  # None: disabled only in development without keys
    rate_limit_per_s: float = Field(default=20.0, gt=0)
    rate_limit_burst: int = Field(default=100, ge=1)

    # Upload and job limits.
    max_upload_bytes: int = Field(default=32 * MiB, ge=1024)
    max_batch_bytes: int = Field(default=512 * MiB, ge=1024)
    max_pixels: int = Field(default=4096 * 4096, ge=64)
    min_side: int = Field(default=8, ge=1)
    max_batch_items: int = Field(default=256, ge=1)
    # Micro-batching: a batch's notch items go to the workers in chunks of at most this many
    # items and pixels per task (learned methods, seconds per item, go one per task).
    batch_chunk_items: int = Field(default=32, ge=1, le=1000)
    batch_chunk_pixels: int = Field(default=8 * 1024 * 1024, ge=64)
    max_zip_entries: int = Field(default=1024, ge=1)
    max_zip_uncompressed_bytes: int = Field(default=1024 * MiB, ge=1024)
    result_ttl_s: int = Field(default=24 * 3600, ge=60)
    analyze_wait_s: float = Field(default=20.0, ge=0)
    accept_concurrency: int = Field(default=2, ge=1, le=64)  # uploads decoded at once per process

    # Webhooks.
    webhook_secret: SecretStr = SecretStr(DEV_WEBHOOK_SECRET)
    webhook_allow_private: bool = False
    webhook_max_retries: int = Field(default=5, ge=0, le=20)

    # Worker behaviour. Time limits stay below the broker's visibility timeout, or a long job
    # would be redelivered while still running (RELIABILITY.md).
    visibility_timeout_s: int = Field(default=4 * 3600, ge=60)
    restore_soft_time_limit_s: int = Field(default=1800, ge=1)
    restore_time_limit_s: int = Field(default=1860, ge=1)
    train_soft_time_limit_s: int = Field(default=3 * 3600, ge=1)
    train_time_limit_s: int = Field(default=3 * 3600 + 300, ge=1)
    max_attempts: int = Field(default=3, ge=1, le=10)
    device: str = "auto"  # "auto" (cuda if available), "cpu", "cuda", "cuda:1", ...
    # The workers compute at this CPU niceness (at least), below the API's 0: on a machine they
    # share, uploads and polls then stay fast while restorations run, and the work still gets
    # every cycle the API leaves idle. 0 leaves the priority as started.
    worker_niceness: int = Field(default=10, ge=0, le=19)
    # The model learned methods use when a request names none: the natural-image model that ships
    # in sagd_core/models/default/ (registered by `make serve`; a full model, for method=ddnm).
    default_model: str = "default"
    models_cache_size: int = Field(default=4, ge=1)
    # A running job holds a lease that its worker renews every quarter of it; a job whose lease
    # runs out (its worker was killed or cut off from Redis that long) is requeued by the
    # workers' reaper (failed once out of attempts). A worker cut off from Redis keeps retrying
    # its job's final state for up to ``final_write_retry_s`` before giving the job up.
    job_lease_s: float = Field(default=60.0, ge=1, le=3600)
    final_write_retry_s: float = Field(default=600.0, ge=0, le=86400)

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip().lower() for part in value.split(",") if part.strip()]
        return value

    @field_validator("api_keys")
    @classmethod
    def _check_hashes(cls, value: list[str]) -> list[str]:
        for item in value:
            if len(item) != 64 or any(c not in "0123456789abcdef" for c in item.lower()):
                raise ValueError(
                    "SAGD_API_KEYS holds SHA-256 hex digests of the keys, not the keys "
                    "(python -c \"import hashlib;print(hashlib.sha256(b'KEY').hexdigest())\")"
                )
        return [item.lower() for item in value]

    @model_validator(mode="after")
    def _refuse_unsafe(self) -> Settings:
        if self.restore_soft_time_limit_s >= self.restore_time_limit_s:
            raise ValueError("restore soft time limit must be below the hard limit")
        if self.train_soft_time_limit_s >= self.train_time_limit_s:
            raise ValueError("train soft time limit must be below the hard limit")
        longest = max(self.restore_time_limit_s, self.train_time_limit_s)
        if longest >= self.visibility_timeout_s:
            raise ValueError(
                f"hard time limits ({longest} s) must stay below SAGD_VISIBILITY_TIMEOUT_S "
                f"({self.visibility_timeout_s} s), or long jobs run twice"
            )
        if self.env == "development":
            return self
        if self.auth_disabled:
            raise ValueError("SAGD_AUTH_DISABLED is allowed only with SAGD_ENV=development")
        if not self.api_keys:
            raise ValueError("SAGD_ENV=production needs SAGD_API_KEYS (SHA-256 digests of keys)")
        if self.webhook_secret.get_secret_value() in ("", DEV_WEBHOOK_SECRET):
            raise ValueError("SAGD_ENV=production needs a SAGD_WEBHOOK_SECRET of your own")
        return self

    @property
    def auth_enabled(self) -> bool:
        if self.auth_disabled is None:
            return bool(self.api_keys) or self.env != "development"
        return not self.auth_disabled

    @property
    def storage_path(self) -> Path:
        return self.storage_root.expanduser().resolve()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once from the environment)."""
    return Settings()
