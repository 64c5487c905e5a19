"""The load of `make loadtest`: 10 × the design load of DESIGN.md §6, on loopback.

Design load → what runs here (10 ×):
- 300 grid workers sending GPS points every 30 s   → 3 000 GpsWorker users, one batch every 30 s (100/s)
- 2 000 new cases a day (an 8-hour day, with photo) → Reporter users: 0.7 reports/s, each with a JPEG
- 50 dashboard viewers                              → 500 Dashboard users polling the changes every 5 s
                                                      (100/s) and refreshing markers, layer, overdue
                                                      list every minute

Accounts, tokens and sessions come from loadtest/accounts.json (written by `python -m
loadtest.prepare`); this file does not import Django. Every report carries its own
Idempotency-Key, written to the keys file so that `python -m loadtest.verify` can check
that each one became exactly one case. Points are inside the demo district's grids.
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import os
import random
import uuid
from datetime import UTC, datetime
from pathlib import Path

from locust import FastHttpUser, constant_pacing, events, task
from PIL import Image

HERE = Path(__file__).resolve().parent
STATE = Path(os.environ.get("LOADTEST_STATE", HERE.parent / ".local" / "loadtest"))
ACCOUNTS = json.loads((STATE / "accounts.json").read_text())
KEYS_FILE = STATE / "keys.txt"
GPS_SECONDS = 30
POLL_SECONDS = 5
REFRESH_EVERY = 12  # polls: a full refresh every minute
REPORT_SECONDS = float(os.environ.get("LOADTEST_REPORT_PACING", "28"))  # per reporter user


def _photo() -> str:
    """A real JPEG of a phone-photo size (decoded by the server, so it must be an image)."""
    rng = random.Random(8)
    image = Image.new("RGB", (800, 600), (rng.randrange(256), 120, 60))
    for _ in range(400):
        x, y = rng.randrange(790), rng.randrange(590)
        image.paste((rng.randrange(256), rng.randrange(256), rng.randrange(256)), (x, y, x + 10, y + 10))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=80)
    return base64.b64encode(buffer.getvalue()).decode()


PHOTO = _photo()
_workers = itertools.cycle(ACCOUNTS["workers"])
_reporters = itertools.cycle(ACCOUNTS["reporters"])
_viewers = itertools.cycle(ACCOUNTS["viewers"])
_keys = KEYS_FILE.open("a", buffering=1)


@events.quitting.add_listener
def _close_keys(environment, **kwargs):
    _keys.close()


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _near(point: list[float], rng: random.Random) -> tuple[float, float]:
    """A point a few metres from a point known to lie inside one of the worker's grids."""
    return point[0] + rng.uniform(-0.00005, 0.00005), point[1] + rng.uniform(-0.00005, 0.00005)


class GpsWorker(FastHttpUser):
    """A grid worker on patrol: one GPS batch every 30 s."""

    weight = int(os.environ.get("LOADTEST_GPS_WEIGHT", "3000"))
    wait_time = constant_pacing(GPS_SECONDS)

    def on_start(self):
        account = next(_workers)
        self.rng = random.Random(account["token"])
        self.point = account["point"]
        self.headers = {"Authorization": f"Token {account['token']}"}
        with self.client.post("/api/v1/patrols", headers=self.headers, catch_response=True) as r:
            if r.status_code not in (200, 201):
                r.failure(f"patrol start: {r.status_code}")
                self.session_id = None
                return
            self.session_id = r.json()["id"]

    @task
    def gps_batch(self):
        if self.session_id is None:
            return
        lon, lat = _near(self.point, self.rng)
        self.client.post(
            f"/api/v1/patrols/{self.session_id}/points",
            json={"points": [{"lon": lon, "lat": lat, "recorded_at": _now(), "accuracy_m": 8}]},
            headers=self.headers,
            name="POST /api/v1/patrols/{id}/points",
        )


class Reporter(FastHttpUser):
    """A grid worker reporting a case with a photo (上报), retrying with the same key when the answer is lost."""

    weight = int(os.environ.get("LOADTEST_REPORTER_WEIGHT", "20"))
    wait_time = constant_pacing(REPORT_SECONDS)

    def on_start(self):
        account = next(_reporters)
        self.rng = random.Random(account["token"])
        self.point = account["point"]
        self.token = account["token"]
        self.category = ACCOUNTS["category"]

    @task
    def report(self):
        key = uuid.uuid4().hex
        lon, lat = _near(self.point, self.rng)
        body = {
            "category": self.category,
            "longitude": lon,
            "latitude": lat,
            "description": "压测：路边堆放垃圾",
            "photos": [PHOTO],
            "accuracy_m": 6,
            "device_time": _now(),
        }
        headers = {"Authorization": f"Token {self.token}", "Idempotency-Key": key}
        _keys.write(f"{self.token[:8]} {key}\n")
        for attempt in range(3):  # what the phone's outbox does: resend until answered
            name = "POST /api/v1/cases (report+photo)"
            with self.client.post("/api/v1/cases", json=body, headers=headers, name=name, catch_response=True) as r:
                if r.status_code in (200, 201):
                    r.success()
                    return
                if r.status_code != 0 and r.status_code < 500:
                    r.failure(f"{r.status_code}: {r.text[:200]}")
                    return
                r.failure(f"{r.status_code} (attempt {attempt + 1})")


class Dashboard(FastHttpUser):
    """A command-center screen: the changes every 5 s, a full refresh every minute."""

    weight = int(os.environ.get("LOADTEST_DASHBOARD_WEIGHT", "500"))
    wait_time = constant_pacing(POLL_SECONDS)

    def on_start(self):
        account = next(_viewers)
        self.headers = {"Cookie": f"sessionid={account['sessionid']}"}
        self.polls = 0
        self.since = _now()
        self.refresh()

    def refresh(self):
        self.client.get("/maps/api/cases/", headers=self.headers, name="GET /maps/api/cases/ (markers)")
        self.client.get("/maps/api/layer/?layer=open_cases", headers=self.headers, name="GET /maps/api/layer/")
        self.client.get("/maps/api/cases/overdue/", headers=self.headers, name="GET /maps/api/cases/overdue/")

    @task
    def poll(self):
        self.polls += 1
        if self.polls % REFRESH_EVERY == 0:
            self.refresh()
        since, self.since = self.since, _now()
        self.client.get(
            "/maps/api/cases/changes/",
            params={"since": since},
            headers=self.headers,
            name="GET /maps/api/cases/changes/",
        )
