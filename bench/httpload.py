"""The production server (gunicorn, as scripts/demo.sh runs it) on loopback, and the clients that load it.

Nothing here imports Django: client processes are spawned fresh and speak plain HTTP/1.1
through http.client, so they share nothing with the bench process's database connections.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


class Server:
    """gunicorn bench.wsgi:application on 127.0.0.1, started and stopped by us (by its own pid)."""

    def __init__(self, *, root: Path, env: dict[str, str], workers: int, log_path: Path) -> None:
        self.root, self.env, self.workers, self.log_path = root, env, workers, log_path
        self.port = 0
        self.process: subprocess.Popen | None = None
        self.cold_rss_kib: dict[int, int] = {}  # per worker, before the product's URLconf was imported

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 90.0) -> None:
        self.port = free_port()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "bench.wsgi:application",
            "--bind",
            f"{HOST}:{self.port}",
            "--workers",
            str(self.workers),
            "--graceful-timeout",
            "10",
            "--log-level",
            "warning",
        ]
        self.process = subprocess.Popen(command, cwd=self.root, env=self.env, stdout=log, stderr=log)  # noqa: S603
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}; see {self.log_path}")
            try:
                if request(self.port, "GET", "/bench/ping").status == 200 and len(self.worker_pids()) >= self.workers:
                    self._warm(deadline)
                    return
            except OSError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"gunicorn did not answer within {timeout:.0f} s; see {self.log_path}")

    def _warm(self, deadline: float) -> None:
        """Have every worker import the product's URLconf before anything is measured."""
        self.cold_rss_kib = {pid: memory_kib(pid)["VmRSS"] for pid in self.worker_pids()}
        warmed: set[int] = set()
        with ThreadPoolExecutor(max_workers=self.workers * 2) as pool:
            while time.monotonic() < deadline:
                answers = pool.map(lambda _: request(self.port, "GET", "/bench/warm"), range(self.workers * 2))
                warmed |= {int(a.body) for a in answers if a.status == 200}
                if set(self.worker_pids()) <= warmed:
                    return
        raise RuntimeError(f"gunicorn workers not warmed in time; see {self.log_path}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def worker_pids(self) -> list[int]:
        if self.process is None:
            return []
        master = self.process.pid
        children = Path(f"/proc/{master}/task/{master}/children")
        if children.exists():
            return [int(pid) for pid in children.read_text().split()]
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == master:
                    pids.append(int(entry.name))
        return pids


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (peak since start) of a process, in KiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values


@dataclasses.dataclass
class Response:
    status: int
    body: bytes
    seconds: float


def request(
    port: int, method: str, path: str, *, body: bytes | None = None, headers: dict[str, str] | None = None
) -> Response:
    started = time.perf_counter()
    connection = http.client.HTTPConnection(HOST, port, timeout=60)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        data = response.read()
        return Response(response.status, data, time.perf_counter() - started)
    finally:
        connection.close()


# --- request plans ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Plan:
    """What one client sends: GET `path`, or POST a case report (points and categories cycled)."""

    kind: str  # "get" or "report"
    path: str
    token: str = ""
    key_prefix: str = ""
    points: tuple[tuple[float, float], ...] = ()
    categories: tuple[str, ...] = ()

    def build(self, n: int) -> tuple[str, str, bytes | None, dict[str, str]]:
        if self.kind == "get":
            return "GET", self.path, None, {}
        lon, lat = self.points[n % len(self.points)]
        body = json.dumps(
            {
                "category": self.categories[n % len(self.categories)],
                "longitude": round(lon, 6),
                "latitude": round(lat, 6),
                "description": "基准测试：路面破损，影响通行",
                "accuracy_m": 8,
            },
            ensure_ascii=False,
        ).encode()
        headers = {
            "Content-Type": "application/json",
            "Authorization": f"Token {self.token}",
            "Idempotency-Key": f"{self.key_prefix}-{n}",
        }
        return "POST", self.path, body, headers


def _closed_loop_client(port: int, plan: Plan, start_at: float, duration: float, queue: Any) -> None:
    """Send requests back to back from `start_at` (time.time()) for `duration` seconds."""
    while time.time() < start_at:
        time.sleep(0.001)
    results = []
    stop = start_at + duration
    n = 0
    while time.time() < stop:
        method, path, body, headers = plan.build(n)
        sent = time.time()
        try:
            response = request(port, method, path, body=body, headers=headers)
            status = response.status
        except OSError:
            status = 0
        results.append((sent - start_at, time.time() - sent, status))
        n += 1
    queue.put(results)


@dataclasses.dataclass
class LoadResult:
    requests: int
    ok: int
    errors: dict[int, int]
    seconds: float
    latencies: list[float]  # of successful requests

    @property
    def throughput(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


def closed_loop(port: int, plans: Sequence[Plan], *, duration: float, ok_status: int = 200) -> LoadResult:
    """One spawned process per plan, all sending back to back for `duration` seconds."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    start_at = time.time() + 1.0 + 0.15 * len(plans)  # time for the processes to start
    processes = [
        context.Process(target=_closed_loop_client, args=(port, plan, start_at, duration, queue)) for plan in plans
    ]
    for process in processes:
        process.start()
    rows = []
    for _ in processes:
        rows += queue.get(timeout=duration + 120)
    for process in processes:
        process.join(timeout=30)
    ok = [latency for started, latency, status in rows if status == ok_status and started + latency <= duration]
    errors: dict[int, int] = {}
    for _, _, status in rows:
        if status != ok_status:
            errors[status] = errors.get(status, 0) + 1
    return LoadResult(requests=len(rows), ok=len(ok), errors=errors, seconds=duration, latencies=ok)


def fixed_rate(
    port: int, plan: Plan, *, rate: float, duration: float, ok_status: int = 200, threads: int = 16
) -> LoadResult:
    """Open loop: request k is sent at k / rate seconds, whatever the answers so far; latency is
    counted from that scheduled time, so a server falling behind shows in the figures."""
    total = max(1, round(rate * duration))
    results: list[tuple[float, int]] = []
    lock = threading.Lock()

    def send(n: int, scheduled: float) -> None:
        method, path, body, headers = plan.build(n)
        try:
            status = request(port, method, path, body=body, headers=headers).status
        except OSError:
            status = 0
        with lock:
            results.append((time.perf_counter() - scheduled, status))

    started = time.perf_counter() + 0.2
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for n in range(total):
            scheduled = started + n / rate
            pause = scheduled - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            pool.submit(send, n, scheduled)
    ok = [latency for latency, status in results if status == ok_status]
    errors: dict[int, int] = {}
    for _, status in results:
        if status != ok_status:
            errors[status] = errors.get(status, 0) + 1
    return LoadResult(requests=len(results), ok=len(ok), errors=errors, seconds=duration, latencies=ok)


def sequential(
    port: int, paths: Sequence[str], *, headers: dict[str, str], check: Callable[[Response], bool]
) -> list[float]:
    """GET each path in turn; the latency of each (seconds). Raises if a response fails `check`."""
    latencies = []
    for path in paths:
        response = request(port, "GET", path, headers=headers)
        if not check(response):
            raise RuntimeError(f"GET {path} answered {response.status}: {response.body[:200]!r}")
        latencies.append(response.seconds)
    return latencies


def server_env(*, database_url: str, mode: str, static_root: Path | None, extra: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"DATABASE_URL": database_url, "GRIDMGMT_MODE": mode, "DEBUG": "0", **extra})
    if static_root is not None:
        env["STATIC_ROOT"] = str(static_root)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return env
