"""Docs and deployment files stay true to the code."""

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [p for p in ROOT.rglob("*.py") if ".venv" not in p.parts and "tests" not in p.parts]


def test_every_environment_variable_read_by_the_code_is_documented():
    read = set()
    for path in SOURCES:
        read |= set(re.findall(r'env_(?:str|bool|int|list)\("([A-Z_]+)"', path.read_text()))
    documented = set(re.findall(r"`([A-Z_]+)`", (ROOT / "docs" / "configuration.md").read_text()))
    assert "DATABASE_URL" in read
    assert read - documented == set()


def test_docker_compose_runs_postgis_web_and_worker_with_the_required_secrets():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert services["db"]["image"].startswith("postgis/postgis:")
    assert services["worker"]["command"] == [
        "python",
        "manage.py",
        "procrastinate",
        "worker",
        "--delete-jobs=successful",
    ]
    env = services["web"]["environment"]
    for name in ("SECRET_KEY", "GRIDMGMT_PII_KEYS", "GRIDMGMT_PII_HASH_KEY"):
        assert env[name] == f"${{{name}:?set {name}}}"
    assert env["DATABASE_URL"].startswith("postgis://gridmgmt:") and "@db:5432/gridmgmt" in env["DATABASE_URL"]


def test_production_settings_pass_the_deployment_checks():
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
        "GRIDMGMT_MODE": "production",
        "GRIDMGMT_HTTPS": "1",
        "DEBUG": "0",
        "SECRET_KEY": "k" * 10 + "-a-long-random-production-secret-key-of-fifty-chars",
        "GRIDMGMT_PII_KEYS": "bG9jYWwtb25seS1rZXktbG9jYWwtb25seS1rZXkhIQ==",
        "GRIDMGMT_PII_HASH_KEY": "another-secret",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_refuses_to_start_without_its_secrets():
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "GRIDMGMT_PII_KEYS", "GRIDMGMT_PII_HASH_KEY"}}
    env["GRIDMGMT_MODE"] = "production"
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 1
    assert "Set the environment variable SECRET_KEY (see docs/configuration.md)." in result.stderr


def test_collectstatic_with_the_production_manifest_storage_finds_every_referenced_file(tmp_path):
    """What `make demo` and the Docker image run: every url()/import in our CSS and JS must exist."""
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
        "GRIDMGMT_MODE": "production",
        "STATIC_ROOT": str(tmp_path / "static"),
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    manifest = (tmp_path / "static" / "staticfiles.json").read_text()
    assert "vendor/maplibre/maplibre-gl.js" in manifest and "leaflet/leaflet.js" in manifest
