#!/usr/bin/env bash
# Re-vendors the front-end libraries listed in frontend/package.json into static/vendor/.
# The built files are committed, so neither `make demo` nor a deployment needs npm or a CDN;
# run this only to upgrade a library (edit the version in frontend/package.json first).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=$(mktemp -d)
cp frontend/package.json "$BUILD/"
(cd "$BUILD" && npm install --no-audit --no-fund --ignore-scripts >/dev/null)
M=$BUILD/node_modules
V=static/vendor
rm -rf "$V" && mkdir -p "$V/markercluster" "$V/vectorgrid" "$V/maplibre" "$V/chartjs"
cp "$M/leaflet.markercluster/dist/leaflet.markercluster.js" "$M/leaflet.markercluster/dist/MarkerCluster.css" \
   "$M/leaflet.markercluster/dist/MarkerCluster.Default.css" "$M/leaflet.markercluster/MIT-LICENCE.txt" "$V/markercluster/"
cp "$M/leaflet.vectorgrid/dist/Leaflet.VectorGrid.bundled.min.js" "$V/vectorgrid/"  # BSD-2 (package.json)
cp "$M/maplibre-gl/dist/maplibre-gl.js" "$M/maplibre-gl/dist/maplibre-gl.css" "$M/maplibre-gl/LICENSE.txt" "$V/maplibre/"
cp "$M/chart.js/dist/chart.umd.min.js" "$M/chart.js/LICENSE.md" "$V/chartjs/"
# Source maps are not shipped: drop the references, or collectstatic's manifest storage
# refuses the missing .map files.
find "$V" -name '*.js' -exec sed -i -E 's@//# sourceMappingURL=[^ ]*$@@' {} +
(cd "$BUILD" && npm ls --depth=0) > "$V/VERSIONS.txt"
rm -rf "$BUILD"
echo "Vendored into $V:"; cat "$V/VERSIONS.txt"
