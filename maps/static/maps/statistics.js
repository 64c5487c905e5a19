/* Planners' statistics page: tables from the JSON API, a time-series chart, a hot-spot map
 * (grid polygons from the vector tiles, coloured by an id → result map), export links. */
(function () {
  "use strict";

  var KIND_COLOURS = { hot: "#d7191c", high_low: "#fdae61", low_high: "#abd9e9", cold: "#2c7bb6", none: "#f0f0f0", excluded: "#bdbdbd" };
  var KIND_LABELS = { hot: "热点", high_low: "高值孤立点", low_high: "低值孤立点", cold: "冷点", none: "不显著", excluded: "未参与分析" };
  var cfg, chart, hotMap, hotLayer, hotKinds = {}, gridIds = new Set();

  function $(id) { return document.getElementById(id); }
  function esc(text) {
    return String(text == null ? "" : text).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  function params(extraForm) {
    var p = new URLSearchParams(new FormData($("stats-form")));
    if (extraForm) new FormData(extraForm).forEach(function (v, k) { p.set(k, v); });
    Array.from(p.keys()).forEach(function (k) { if (!p.get(k)) p.delete(k); });
    return p;
  }

  function getJSON(url, p) {
    return fetch(url + "?" + p.toString(), { credentials: "same-origin" }).then(function (r) {
      return r.json().then(function (body) { if (!r.ok) throw new Error(body.error || r.status); return body; });
    });
  }

  function renderTable(target, data) {
    var suppressed = new Set(data.suppressed || []);
    var head = data.columns.map(function (c) { return "<th>" + esc(c[1]) + "</th>"; }).join("");
    var body = data.rows.map(function (row) {
      return "<tr>" + data.columns.map(function (c) {
        var v = row[c[0]];
        var text = v == null ? (suppressed.has(c[0]) ? "&lt;5" : "") : esc(v);
        return '<td class="' + (typeof v === "number" ? "num" : "") + '">' + text + "</td>";
      }).join("") + "</tr>";
    }).join("");
    $(target).innerHTML = "<p><b>" + esc(data.title) + "</b>（" + data.rows.length + " 行）</p><table><thead><tr>" + head +
      "</tr></thead><tbody>" + (body || '<tr><td colspan="' + data.columns.length + '">无数据</td></tr>') + "</tbody></table>";
  }

  function showError(target, error) { $(target).innerHTML = '<p class="error">' + esc(error.message) + "</p>"; }

  function exportLinks(dataset, p) {
    var box = document.querySelector('.exports[data-dataset="' + dataset + '"]');
    var links = [["csv", "导出 CSV"], ["geojson", "导出 GeoJSON"], ["gpkg", "导出 GeoPackage"]].map(function (f) {
      return '<a href="' + cfg.urls["export"].replace("DATASET", dataset).replace("FMT", f[0]) + "?" + p.toString() + '">' + f[1] + "</a>";
    });
    box.innerHTML = links.join("");
  }

  function loadCounts() {
    var p = params();
    exportLinks("counts", p);
    getJSON(cfg.urls.counts, p).then(function (d) { renderTable("counts-table", d); }).catch(function (e) { showError("counts-table", e); });
    getJSON(cfg.urls.series, p).then(function (d) {
      if (chart) chart.destroy();
      chart = new Chart($("series-chart"), {
        type: "line",
        data: { labels: d.series.map(function (s) { return s.period; }), datasets: [{ label: "案件数", data: d.series.map(function (s) { return s.count; }), borderColor: "#0b3d91", backgroundColor: "#0b3d91", tension: 0.2 }] },
        options: { animation: false, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
      });
    });
  }

  function ensureHotMap() {
    if (hotMap) return;
    hotMap = L.map("hotspot-map", { zoomControl: true });
    hotLayer = L.vectorGrid.protobuf(cfg.urls.tiles, {
      rendererFactory: L.svg.tile, interactive: true, maxNativeZoom: 18,
      getFeatureId: function (f) { return f.properties.id; },
      vectorTileLayerStyles: { grids: function (props) { gridIds.add(props.id); return styleOf(props.id); } },
    }).addTo(hotMap);
    hotLayer.on("click", function (e) {
      var k = hotKinds[e.layer.properties.id];
      L.popup().setLatLng(e.latlng).setContent(esc(e.layer.properties.code) + "：" + esc(k ? KIND_LABELS[k.kind] : "无数据") +
        (k && k.value != null ? "<br>密度 " + k.value : "")).openOn(hotMap);
    });
    var legend = Object.keys(KIND_LABELS).map(function (k) {
      return '<div class="row"><span class="swatch" style="background:' + KIND_COLOURS[k] + '"></span>' + KIND_LABELS[k] + "</div>";
    }).join("");
    $("hotspot-legend").innerHTML = legend;
  }

  function styleOf(id) {
    var k = hotKinds[id];
    return { fill: true, fillColor: KIND_COLOURS[k ? k.kind : "excluded"], fillOpacity: 0.8, color: "#555", weight: 0.6 };
  }

  function loadHotspots() {
    ensureHotMap();
    var p = params($("hotspot-options"));
    exportLinks("hotspots", p);
    getJSON(cfg.urls.extent, p).then(function (d) {
      if (d.bbox) hotMap.fitBounds([[d.bbox[1], d.bbox[0]], [d.bbox[3], d.bbox[2]]]);
    });
    getJSON(cfg.urls.hotspots, p).then(function (d) {
      hotKinds = {};
      d.rows.forEach(function (r) { hotKinds[r.region_id] = r; });
      gridIds.forEach(function (id) { hotLayer.setFeatureStyle(id, styleOf(id)); });
      renderTable("hotspots-table", d);
    }).catch(function (e) { showError("hotspots-table", e); });
  }

  function loadSimple(name, optionsForm) {
    var p = params(optionsForm ? $(optionsForm) : null);
    exportLinks(name, p);
    getJSON(cfg.urls[name], p).then(function (d) { renderTable(name + "-table", d); }).catch(function (e) { showError(name + "-table", e); });
  }

  var loaders = {
    counts: loadCounts,
    hotspots: loadHotspots,
    distance: function () { loadSimple("distance", "distance-options"); },
    coverage: function () { loadSimple("coverage", "coverage-options"); },
    profile: function () { loadSimple("profile"); },
    report: function () {},
  };
  var current = "counts";

  document.addEventListener("DOMContentLoaded", function () {
    cfg = JSON.parse($("statistics-config").textContent);
    document.querySelectorAll(".tabs button").forEach(function (button) {
      button.addEventListener("click", function () {
        current = button.dataset.tab;
        document.querySelectorAll(".tabs button").forEach(function (b) { b.classList.toggle("active", b === button); });
        document.querySelectorAll(".tab").forEach(function (t) { t.hidden = t.id !== "tab-" + current; });
        loaders[current]();
      });
    });
    $("stats-form").addEventListener("change", function () { loaders[current](); });
    $("run-hotspots").addEventListener("click", loadHotspots);
    $("run-distance").addEventListener("click", loaders.distance);
    $("run-coverage").addEventListener("click", loaders.coverage);
    $("download-report").addEventListener("click", function () {
      var p = params();
      if (!p.get("street")) { alert("请先选择街道"); return; }
      window.location = cfg.urls.report + "?" + p.toString();
    });
    loadCounts();
  });
})();
