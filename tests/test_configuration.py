"""Docs and deployment files stay true to the code."""

import re
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
    assert services["worker"]["command"] == ["python", "manage.py", "procrastinate", "worker"]
    env = services["web"]["environment"]
    for name in ("SECRET_KEY", "GRIDMGMT_PII_KEYS", "GRIDMGMT_PII_HASH_KEY"):
        assert env[name] == f"${{{name}:?set {name}}}"
    assert env["DATABASE_URL"].startswith("postgis://gridmgmt:") and "@db:5432/gridmgmt" in env["DATABASE_URL"]
