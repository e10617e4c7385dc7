"""The deployment files agree with the code: what can be checked without a Docker engine.

No engine runs here (nor in CI), so the image is never built by the tests. They check instead
that every setting the files name exists and parses, that the compose stack has what
RELIABILITY.md requires of it (Redis with AOF and a healthcheck, services waiting for a healthy
Redis, a GPU reservation only in the `gpu` profile), that the workers consume the queues the API
routes to, and that the image's files and command exist (the command itself is run by
tests/integration/test_serve_processes.py).
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.jobs.contracts import QUEUES
from service.settings import Settings

REPO = Path(__file__).resolve().parents[2]


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    return loaded


def _env_example() -> dict[str, str]:
    pairs = {}
    for line in (REPO / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            pairs[name.strip()] = value.strip()
    return pairs


def _is_setting(name: str) -> bool:
    return name.startswith("SAGD_") and name[5:].lower() in Settings.model_fields


def test_env_example_names_real_settings_that_parse() -> None:
    pairs = _env_example()
    unknown = [name for name in pairs if not _is_setting(name)]
    assert unknown == []
    values = {k[5:].lower(): v for k, v in pairs.items() if v != ""}
    values.update(env="development")  # production also wants keys and a secret, filled in .env
    Settings(_env_file=None, **values)  # type: ignore[arg-type]


def test_compose_environment_names_real_settings() -> None:
    compose = _compose()
    names = set(compose["x-sagd-env"])
    for service in compose["services"].values():
        names |= {n for n in service.get("environment", {}) if n.startswith("SAGD_")}
    assert names and [n for n in names if not _is_setting(n)] == []


def test_compose_redis_keeps_queued_jobs_and_services_wait_for_it() -> None:
    services = _compose()["services"]
    redis = services["redis"]
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--appendfsync") + 1] == "always"  # an accepted job is kept
    assert "redis-cli" in redis["healthcheck"]["test"]
    for name in ("api", "worker", "worker-train", "beat", "worker-gpu", "flower"):
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy", name
    assert "healthcheck" in services["api"] and "healthcheck" in services["worker"]


def test_compose_workers_consume_every_queue_and_gpu_is_optional() -> None:
    """The CPU workers together consume every queue, restorations and trainings on separate
    workers (a training never holds up a restoration); the GPU worker takes both."""
    services = _compose()["services"]

    def queues(name: str) -> set[str]:
        command = services[name]["command"]
        assert command[:4] == ["celery", "-A", "worker.celery_app", "worker"]
        assert "--concurrency=1" in command and "--pool=prefork" in command  # time limits work
        return set(command[command.index("-Q") + 1].split(","))

    assert queues("worker") | queues("worker-train") == set(QUEUES)
    assert not queues("worker") & queues("worker-train")
    assert queues("worker-gpu") == set(QUEUES)
    gpu = services["worker-gpu"]
    assert gpu["profiles"] == ["gpu"] and gpu["environment"]["SAGD_DEVICE"] == "cuda"
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and devices[0]["capabilities"] == ["gpu"]
    assert services["flower"]["profiles"] == ["flower"]
    assert "deploy" not in services["worker"]  # the CPU worker needs no GPU


def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            keyword, _, rest = line.strip().partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def test_dockerfile_copies_what_exists_and_runs_the_api_launcher() -> None:
    from service.serve import parser

    instructions = _dockerfile_instructions()
    for keyword, rest in instructions:
        if keyword == "COPY":
            *sources, _ = shlex.split(rest)
            for source in sources:
                assert (REPO / source).exists(), source
    [cmd] = [rest for keyword, rest in instructions if keyword == "CMD"]
    command = json.loads(cmd)
    assert command[:3] == ["python", "-m", "service.serve"]
    args = parser().parse_args(command[3:])
    assert args.host == "0.0.0.0" and args.port == 8000 and args.workers >= 2
    [healthcheck] = [rest for keyword, rest in instructions if keyword == "HEALTHCHECK"]
    assert re.search(r"127\.0\.0\.1:8000/healthz", healthcheck)
    assert any(keyword == "USER" and rest != "root" for keyword, rest in instructions)


@pytest.mark.parametrize("name", ["Dockerfile", "docker-compose.yml", ".env.example"])
def test_deploy_guide_names_the_file(name: str) -> None:
    assert name in (REPO / "docs" / "DEPLOY.md").read_text()
