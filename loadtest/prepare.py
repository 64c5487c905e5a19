"""Accounts for `make loadtest`, in the load-test database (never the demo's): grid workers with
API tokens and a point inside their grid, and command-center viewers with a signed-in session.

Run by loadtest/run.sh after migrate and load_demo: `python -m loadtest.prepare`. Idempotent:
the accounts are kept, their tokens and sessions are replaced. Writes accounts.json (read by
the locustfile) and starts an empty keys file, both under LOADTEST_STATE.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gridmgmt.settings")
django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY  # noqa: E402
from django.contrib.gis.db.models.functions import PointOnSurface  # noqa: E402
from django.contrib.sessions.backends.db import SessionStore  # noqa: E402
from django.db import transaction  # noqa: E402
from django.utils import timezone  # noqa: E402
from knox.models import AuthToken  # noqa: E402

from accounts.models import Role, User  # noqa: E402
from events.models import Category  # noqa: E402
from geodata.models import GridAssignment, Street  # noqa: E402
from geodata.selectors import grids_valid_on  # noqa: E402

GPS_WORKERS = int(os.environ.get("LOADTEST_GPS_WEIGHT", "3000"))
REPORTERS = int(os.environ.get("LOADTEST_REPORTER_WEIGHT", "20"))
VIEWERS = int(os.environ.get("LOADTEST_DASHBOARD_WEIGHT", "500"))
PREFIX = "lt_"
UNUSABLE = "!"  # no password: the load test signs in with tokens and sessions made here


def _users(kind: str, count: int, role: str) -> list[User]:
    names = [f"{PREFIX}{kind}{n:04d}" for n in range(1, count + 1)]
    existing = set(User.objects.filter(username__in=names).values_list("username", flat=True))
    User.objects.bulk_create(
        [User(username=name, role=role, first_name=name, password=UNUSABLE) for name in names if name not in existing]
    )
    return list(User.objects.filter(username__in=names).order_by("username"))


@transaction.atomic
def prepare(state: Path) -> dict:
    if not settings.DATABASES["default"]["NAME"].startswith("gridmgmt_loadtest"):
        raise SystemExit("loadtest.prepare runs only against a gridmgmt_loadtest* database")
    grids = list(grids_valid_on().annotate(inside=PointOnSurface("geom")).order_by("code").values_list("id", "inside"))
    if not grids:
        raise SystemExit("no grids: run load_demo first")
    streets = list(Street.objects.order_by("code"))
    category = Category.objects.filter(is_active=True, kind=Category.Kind.EVENT).order_by("major_code", "minor_code")[0]

    workers = _users("w", GPS_WORKERS + REPORTERS, Role.GRID_WORKER)
    GridAssignment.objects.filter(worker__in=workers).delete()
    GridAssignment.objects.bulk_create(
        [GridAssignment(grid_id=grids[n % len(grids)][0], worker=w, is_primary=True) for n, w in enumerate(workers)]
    )
    AuthToken.objects.filter(user__in=workers).delete()
    accounts = []
    for n, worker in enumerate(workers):
        _, token = AuthToken.objects.create(user=worker)
        point = grids[n % len(grids)][1]
        accounts.append({"username": worker.username, "token": token, "point": [point.x, point.y]})

    viewers = _users("v", VIEWERS, Role.OPERATOR)
    for n, viewer in enumerate(viewers):
        viewer.street = streets[n % len(streets)]
    User.objects.bulk_update(viewers, ["street"])
    sessions = []
    for viewer in viewers:
        session = SessionStore()
        session[SESSION_KEY] = str(viewer.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = viewer.get_session_auth_hash()
        session.create()
        sessions.append({"username": viewer.username, "sessionid": session.session_key})

    data = {
        "prepared_at": timezone.now().isoformat(),
        "category": category.code,
        "workers": accounts[:GPS_WORKERS],
        "reporters": accounts[GPS_WORKERS:],
        "viewers": sessions,
    }
    (state / "accounts.json").write_text(json.dumps(data))
    (state / "keys.txt").write_text("")
    return data


if __name__ == "__main__":
    target = Path(os.environ.get("LOADTEST_STATE", ".local/loadtest"))
    target.mkdir(parents=True, exist_ok=True)
    prepared = prepare(target)
    print(
        f"loadtest accounts: {len(prepared['workers'])} GPS workers, {len(prepared['reporters'])} reporters, "
        f"{len(prepared['viewers'])} dashboard viewers; category {prepared['category']}"
    )
