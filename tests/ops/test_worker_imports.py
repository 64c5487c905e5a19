"""What a web worker loads with the URLconf (docs/performance.md §8).

Every gunicorn worker imports the whole URLconf; a heavy library imported at module level by
any view costs its memory in every worker, serving or not. The analysis libraries are
imported inside the functions that use them; this keeps it so.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings

# scipy + scikit-learn (mapclassify), PySAL (esda, libpysal), folium and its templates,
# matplotlib: ≈ 120 MB per worker when the URLconf imported them.
NOT_AT_START = ["scipy", "sklearn", "mapclassify", "esda", "libpysal", "folium", "branca", "matplotlib"]

PROBE = """
import json, sys
import django
django.setup()
from django.urls import get_resolver, reverse
get_resolver().url_patterns
reverse("maps:dashboard"), reverse("maps:grid_design"), reverse("maps:map_report")
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def test_importing_the_urlconf_in_a_fresh_process_loads_no_analysis_library():
    # Given a fresh interpreter with the project's settings
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "gridmgmt.settings"}
    # When it imports the URLconf and reverses URLs of the dashboard, grid design and map report
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=Path(settings.BASE_DIR),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    loaded = set(json.loads(result.stdout.strip().splitlines()[-1]))
    # Then none of the heavy analysis libraries is in sys.modules (numpy is, and may be)
    assert "django" in loaded and "numpy" in loaded
    assert sorted(loaded & set(NOT_AT_START)) == []
