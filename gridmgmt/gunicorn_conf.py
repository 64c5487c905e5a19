"""gunicorn settings for serving gridmgmt: scripts/demo.sh and the Dockerfile (docker-compose `web`).

    gunicorn gridmgmt.wsgi:application -c gridmgmt/gunicorn_conf.py --bind ... --workers ...

The master imports the application and the whole URLconf once, before it forks any worker
(`preload_app` + `when_ready`). A worker then starts ready to serve: none spends its first
request importing every view module (≈ 3 s of CPU), which on a loaded two-core machine ran
past the 30 s worker timeout and got workers killed in a loop (docs/performance.md). The
workers also share the imported modules' memory pages until they write to them.

The price of preloading: `kill -HUP` restarts workers without re-reading the code; deploy
new code by restarting the service.
"""

preload_app = True


def when_ready(server) -> None:
    """In the master, after the app is loaded and before the first fork: import every view module."""
    from django.conf import settings
    from django.db import connections
    from django.urls import get_resolver

    get_resolver(settings.ROOT_URLCONF).url_patterns  # noqa: B018 (the import is the point)
    connections.close_all()  # no worker may inherit a database connection of the master
    server.log.info("URLconf imported in the master; forking workers")
