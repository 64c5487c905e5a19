"""Settings for collecting the bench server's static files only (python manage.py collectstatic).

The product's settings, plus one directory of empty source maps (made by bench.district):
vendored Chart.js, markercluster and MapLibre end with a sourceMappingURL comment naming a
.map that is not vendored, and the manifest storage refuses to post-process a file whose
reference it cannot find. Until static/vendor carries the maps (or the comments are
removed), production collectstatic fails without this.
"""

from gridmgmt.settings import *  # noqa: F403
from gridmgmt.settings import BASE_DIR, STATICFILES_DIRS

STUBS = BASE_DIR / ".local" / "bench" / "static-stubs"
STATICFILES_DIRS = [*STATICFILES_DIRS, STUBS]
