/* 3-D view of buildings (三维楼栋), MapLibre GL JS served from static/vendor/maplibre.
 *
 * Buildings come as vector tiles (maps.buildings3d.building_tile) with their height and
 * every value they can be coloured by, so switching the colour only changes a paint
 * property; the legend's classes are computed by the server (mapclassify, as in the 2-D
 * choropleth) over the buildings in view. Grid boundaries are the dashboard's grid tiles,
 * drawn on the ground; facilities are circles. The style uses only our own endpoints:
 * no glyphs, no sprites, no base map unless one is configured.
 */
(function () {
  "use strict";

  var PALETTE = ["#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026"];
  var NO_VALUE = "#d9d9d9";
  var CONTEXT = "#c3c8cf"; // buildings outside the user's scope: massing only
  var SELECTED = "#2b6cb0";
  var STATUS_COLOURS = {
    intact: "#1a9850", damaged: "#d7191c", missing: "#7b3294", occupied: "#f4a30d", decommissioned: "#7b8794",
  };
  var BUILDINGS = "buildings-3d";

  var cfg = null;
  var map = null;
  var origin = window.location.origin;
  var legend = { bins: [] };
  var selected = null;
  var classTimer = null;
  var classRequest = 0;
  var styleReady = false; // paint and sources can change only once the style has loaded

  function $(id) { return document.getElementById(id); }

  function esc(text) {
    return String(text == null ? "" : text).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  function fmtTime(iso) {
    var d = new Date(iso);
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    return (d.getMonth() + 1) + "-" + pad(d.getDate()) + " " + pad(d.getHours()) + ":" + pad(d.getMinutes());
  }

  function fmtNumber(value) {
    if (value == null) return "";
    return Math.abs(value) >= 100 ? Math.round(value).toString() : (Math.round(value * 100) / 100).toString();
  }

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }).then(function (response) {
      if (!response.ok) {
        return response.json().catch(function () { return {}; }).then(function (body) {
          throw new Error(body.error || ("HTTP " + response.status));
        });
      }
      return response.json();
    });
  }

  function colourBy() { return $("colour-by").value; }
  function days() { return $("days").value; }
  function viewParams() { return "storey=" + encodeURIComponent(cfg.storey_m) + "&days=" + encodeURIComponent(days()); }
  function buildingTiles() { return origin + cfg.urls.buildings + "?" + viewParams(); }

  // --- colours ----------------------------------------------------------------------------

  function classColour(index, count) {
    // Fewer classes than colours: spread them over the ramp from its light end, so that the
    // many buildings where nothing is counted (one class of zeros) do not look alarming.
    if (count <= 1) return PALETTE[0];
    return PALETTE[Math.round(index * (PALETTE.length - 1) / (count - 1))];
  }

  function colourExpression() {
    var bins = legend.bins || [];
    var value = ["to-number", ["get", colourBy()], 0];
    var byClass = NO_VALUE;
    if (bins.length) {
      byClass = ["case"];
      bins.forEach(function (upper, i) { byClass.push(["<=", value, upper], classColour(i, bins.length)); });
      byClass.push(classColour(bins.length - 1, bins.length)); // above the top bound: values outside the view
    }
    return [
      "case",
      ["boolean", ["feature-state", "selected"], false], SELECTED,
      ["!", ["has", "id"]], CONTEXT,
      ["!", ["has", colourBy()]], NO_VALUE, // a count under five, not shown to this user
      byClass,
    ];
  }

  function recolour() {
    map.setPaintProperty(BUILDINGS, "fill-extrusion-color", colourExpression());
    document.body.dataset.colourBy = colourBy();
    renderLegend();
  }

  function renderLegend() {
    var item = cfg.colour_by[colourBy()];
    var title = item.label + (colourBy() === "open_cases" ? "（近" + days() + "天上报）" : "") + "（" + item.unit + "）";
    var html = '<div class="title">' + esc(title) + "</div>";
    var bins = legend.bins || [];
    var lower = legend.min;
    bins.forEach(function (upper, i) {
      html += '<div class="row"><span class="swatch" style="background:' + classColour(i, bins.length) + '"></span>' +
        (lower === upper ? esc(fmtNumber(upper)) : esc(fmtNumber(lower)) + " – " + esc(fmtNumber(upper))) + "</div>";
      lower = upper;
    });
    if (!bins.length) html += '<div class="row muted">视野内没有可统计的楼栋</div>';
    if (cfg.suppressed_below && colourBy() !== "open_cases") {
      html += '<div class="row"><span class="swatch" style="background:' + NO_VALUE + '"></span>不足' +
        cfg.suppressed_below + "（不显示）</div>";
    }
    html += '<div class="row"><span class="swatch" style="background:' + CONTEXT + '"></span>管辖范围外（仅显示体量）</div>';
    html += '<div class="title">城市部件</div>';
    Object.keys(STATUS_COLOURS).forEach(function (status) {
      html += '<div class="row"><span class="dot" style="background:' + STATUS_COLOURS[status] + '"></span>' +
        esc(cfg.facility_status[status] || status) + "</div>";
    });
    html += '<div class="title">网格边界</div><div class="row"><span class="line"></span>网格</div>';
    if (legend.buildings != null) html += '<div class="muted">分级依据：视野内 ' + legend.buildings + " 栋楼</div>";
    $("legend").innerHTML = html;
  }

  // The legend is classified over the buildings in view (at most a box of the size the server accepts).
  function viewBox() {
    var b = map.getBounds();
    var c = map.getCenter();
    var half = cfg.max_class_box_degrees * 0.45;
    var west = Math.max(b.getWest(), c.lng - half), east = Math.min(b.getEast(), c.lng + half);
    var south = Math.max(b.getSouth(), c.lat - half), north = Math.min(b.getNorth(), c.lat + half);
    return [west, south, east, north].map(function (v) { return v.toFixed(6); }).join(",");
  }

  function loadClasses() {
    if (!styleReady) return Promise.resolve();
    var request = ++classRequest;
    var showBuildings = map.getZoom() >= cfg.min_building_zoom;
    $("zoom-hint").hidden = showBuildings;
    if (!showBuildings) return Promise.resolve();
    var url = cfg.urls.classes + "?colour_by=" + colourBy() + "&scheme=" + $("scheme").value + "&" + viewParams() +
      "&bbox=" + viewBox();
    return getJSON(url).then(function (data) {
      if (request !== classRequest) return; // a newer view asked meanwhile
      legend = data.classes;
      legend.buildings = data.buildings;
      recolour();
    });
  }

  function scheduleClasses() {
    clearTimeout(classTimer);
    classTimer = setTimeout(function () { loadClasses().catch(showError); }, 250);
  }

  // --- a building's panel ------------------------------------------------------------------

  function select(id) {
    if (selected != null) map.setFeatureState({ source: "buildings", sourceLayer: "buildings", id: selected }, { selected: false });
    selected = id;
    if (id != null) map.setFeatureState({ source: "buildings", sourceLayer: "buildings", id: id }, { selected: true });
  }

  function showPanel(html) {
    $("building-body").innerHTML = html;
    $("building").hidden = false;
    $("building-empty").hidden = true;
  }

  function showError(error) { showPanel('<p class="error">' + esc(error.message) + "</p>"); }

  function openBuilding(id) {
    select(id);
    return getJSON(cfg.urls.building.replace("{id}", id) + "?" + viewParams()).then(renderBuilding).catch(showError);
  }

  function caseList(list, count) {
    if (!list.length) return '<ul class="cases"><li class="empty">无</li></ul>';
    return '<ul class="cases">' + list.map(function (c) {
      return '<li data-case-id="' + c.id + '"><span class="light light-' + (c.light || "none") + '"></span><b>' +
        esc(c.number) + "</b> " + esc(c.category) + "<small>" + esc(c.state_label) + " · " + fmtTime(c.reported_at) +
        "</small></li>";
    }).join("") + (count > list.length ? '<li class="more">另有 ' + (count - list.length) + " 件</li>" : "") + "</ul>";
  }

  // A population count: null when suppressed (under five, for users who may not see the residents).
  function count(n, below) { return n == null ? "&lt;" + (below || 5) : String(n); }

  function pyramid(s) {
    var below = s.suppressed_below;
    var most = Math.max.apply(null, s.male.concat(s.female).concat([1]));
    var bar = function (n) { return n == null ? 0 : 100 * n / most; };
    var rows = s.age_bands.map(function (band, i) {
      return "<tr><td>" + esc(band) + '</td><td class="bar male"><span style="width:' + bar(s.male[i]) +
        '%"></span><em>' + count(s.male[i], below) + '</em></td><td class="bar female"><span style="width:' +
        bar(s.female[i]) + '%"></span><em>' + count(s.female[i], below) + "</em></td></tr>";
    }).reverse();
    return '<table class="pyramid"><tr><th>年龄</th><th>男</th><th>女</th></tr>' + rows.join("") + "</table>";
  }

  function renderBuilding(b) {
    var s = b.structure; // absent without the right to population figures
    var below = s ? s.suppressed_below : null;
    var g = b.grid;
    var html = '<div class="building-panel" data-building-id="' + b.id + '"><h3>' + esc(b.address) + "</h3>" +
      "<p>" + esc(b.code) + " · " + esc(b.use) + " · " + b.floors + " 层 · 约 " + b.height_m + " 米" +
      (b.has_footprint ? "" : "（无基底轮廓，按点位示意）") + "</p>" +
      '<table class="counts">' + (s ? '<tr><td>户数</td><td class="n" data-field="households">' + count(b.households, below) + "</td>" +
      '<td>实有人口</td><td class="n" data-field="residents">' + count(s.residents, below) + "</td></tr>" +
      '<tr><td>重点关注</td><td class="n" data-field="followed">' + count(s.followed_residents, below) + "</td>" : "<tr>") +
      '<td>未结案件</td><td class="n" data-field="open_cases">' + b.open_cases_count + "</td></tr></table>" +
      (s ? "<h4>年龄结构（人数）</h4>" + pyramid(s) +
      (below ? '<p class="muted">不足' + below + "人的数字不显示。</p>" : "") +
      "<h4>重点关注人群（人数）</h4><table>" + s.followed.map(function (f) {
        return "<tr><td>" + esc(f.label) + '</td><td class="n">' + count(f.count, below) + "</td></tr>";
      }).join("") + "</table>" : "") +
      "<h4>所属网格</h4><p>" + (g ? esc(g.name) + "（" + esc(g.code) + "）<br><small>" + esc(g.street) + " " +
        esc(g.community) + "</small>" : "未划入网格") + "</p>" +
      '<p data-field="workers">网格员：' + (b.workers.length ? b.workers.map(function (w) {
        return esc(w.name) + (w.primary ? "（专职）" : "");
      }).join("、") : "未配备") + "</p>" +
      "<h4>未结案件（近" + b.days + "天上报，" + b.open_cases_count + " 件）</h4>" + caseList(b.open_cases, b.open_cases_count) +
      "<h4>近" + b.days + "天其他案件（" + b.other_cases_count + " 件）</h4>" + caseList(b.other_cases, b.other_cases_count);
    if (b.household_list) {
      html += '<h4>住户（' + b.household_list.length + ' 户，电话已脱敏）</h4><table class="households">' +
        "<tr><th>单元/房号</th><th>类型</th><th>户主</th><th>电话</th><th>人数</th></tr>" +
        b.household_list.map(function (h) {
          return "<tr><td>" + esc(h.unit) + esc(h.room) + "</td><td>" + esc(h.household_type) + "</td><td>" +
            esc(h.head_name) + "</td><td>" + esc(h.phone_masked) + '</td><td class="n">' + h.residents + "</td></tr>";
        }).join("") + "</table>";
    } else {
      html += '<p class="muted">仅显示统计数，不显示个人信息。</p>';
    }
    showPanel(html + "</div>");
  }

  // --- the map -----------------------------------------------------------------------------

  function baseMap() {
    if (cfg.base_map === "osm") {
      return { tiles: ["https://tile.openstreetmap.org/{z}/{x}/{y}.png"], attribution: "© OpenStreetMap" };
    }
    if (cfg.base_map === "tianditu" && cfg.tianditu_key) {
      var tiles = [];
      for (var i = 0; i < 8; i++) {
        tiles.push("https://t" + i + ".tianditu.gov.cn/vec_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER=vec" +
          "&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}&tk=" + cfg.tianditu_key);
      }
      return { tiles: tiles, attribution: "© 天地图" };
    }
    return null; // "none" (tests, intranets) and "amap" (GCJ-02, not drawn: see docs/dashboard.md)
  }

  function style() {
    var sources = {
      grids: { type: "vector", tiles: [origin + cfg.urls.grids], minzoom: 8, maxzoom: 16 },
      buildings: {
        type: "vector", tiles: [buildingTiles()], minzoom: cfg.min_building_zoom, maxzoom: 16,
        promoteId: { buildings: "id" },
      },
      facilities: { type: "vector", tiles: [origin + cfg.urls.facilities], minzoom: cfg.min_facility_zoom, maxzoom: 16 },
    };
    var layers = [{ id: "background", type: "background", paint: { "background-color": "#eef1f5" } }];
    var base = baseMap();
    if (base) {
      sources.base = { type: "raster", tiles: base.tiles, tileSize: 256, attribution: base.attribution };
      layers.push({ id: "base", type: "raster", source: "base", paint: { "raster-opacity": 0.8 } });
    }
    layers.push(
      { id: "grid-fill", type: "fill", source: "grids", "source-layer": "grids",
        paint: { "fill-color": "#0b3d91", "fill-opacity": 0.05 } },
      { id: "grid-lines", type: "line", source: "grids", "source-layer": "grids",
        paint: { "line-color": "#0b3d91", "line-width": 2, "line-opacity": 0.7, "line-dasharray": [4, 2] } },
      { id: BUILDINGS, type: "fill-extrusion", source: "buildings", "source-layer": "buildings",
        paint: {
          "fill-extrusion-height": ["get", "height_m"],
          "fill-extrusion-base": 0,
          "fill-extrusion-color": colourExpression(),
          "fill-extrusion-opacity": 0.92,
          "fill-extrusion-vertical-gradient": true,
        } },
      { id: "facilities", type: "circle", source: "facilities", "source-layer": "facilities",
        paint: {
          "circle-radius": ["interpolate", ["linear"], ["zoom"], 15, 3, 19, 8],
          "circle-color": ["match", ["get", "status"]].concat(
            Object.keys(STATUS_COLOURS).reduce(function (acc, key) { return acc.concat([key, STATUS_COLOURS[key]]); }, []),
            ["#7b8794"]),
          "circle-stroke-color": "#ffffff",
          "circle-stroke-width": 1,
          "circle-pitch-alignment": "map",
        } }
    );
    return { version: 8, sources: sources, layers: layers };
  }

  function startView() {
    var s = cfg.start;
    if (!s) return null;
    // The dashboard may be zoomed out further than buildings are drawn: keep its centre, come closer.
    return { center: [s.lon, s.lat], zoom: Math.max(s.zoom, cfg.min_building_zoom + 1), pitch: s.pitch, bearing: s.bearing };
  }

  function fitToScope() {
    return getJSON(cfg.urls.extent).then(function (data) {
      if (!data.bbox) return;
      map.fitBounds([[data.bbox[0], data.bbox[1]], [data.bbox[2], data.bbox[3]]], { padding: 20, animate: false });
      if (map.getZoom() < cfg.min_building_zoom + 1) map.jumpTo({ zoom: cfg.min_building_zoom + 1 });
      map.jumpTo({ pitch: 60, bearing: -20 });
    });
  }

  function facilityPopup(event) {
    var p = event.features[0].properties;
    new maplibregl.Popup({ closeButton: false })
      .setLngLat(event.lngLat)
      .setHTML("<b>" + esc(p.type) + "</b><br>" + esc(cfg.facility_status[p.status] || p.status))
      .addTo(map);
  }

  function init() {
    cfg = JSON.parse($("buildings3d-config").textContent);
    var start = startView();
    map = new maplibregl.Map({
      container: "b3d-map",
      style: style(),
      center: start ? start.center : [106.5, 29.5],
      zoom: start ? start.zoom : cfg.min_building_zoom + 1,
      pitch: start ? start.pitch : 60,
      bearing: start ? start.bearing : -20,
      maxPitch: 85,
      attributionControl: { compact: true },
    });
    map.addControl(new maplibregl.NavigationControl({ visualizePitch: true, showCompass: true }), "top-right");
    map.addControl(new maplibregl.ScaleControl({ unit: "metric" }), "bottom-left");
    window.buildings3d = { map: map, cfg: cfg, legend: function () { return legend; } };

    map.on("click", BUILDINGS, function (event) {
      var feature = event.features[0];
      if (feature.properties.id == null) {
        select(null);
        showPanel('<p class="muted">该楼栋不在您的管辖范围内，仅显示体量。</p>');
        return;
      }
      openBuilding(feature.properties.id);
    });
    map.on("click", "facilities", facilityPopup);
    [BUILDINGS, "facilities"].forEach(function (layer) {
      map.on("mouseenter", layer, function () { map.getCanvas().style.cursor = "pointer"; });
      map.on("mouseleave", layer, function () { map.getCanvas().style.cursor = ""; });
    });
    map.on("moveend", scheduleClasses);

    $("colour-by").addEventListener("change", function () { loadClasses().catch(showError); });
    $("scheme").addEventListener("change", function () { loadClasses().catch(showError); });
    $("days").addEventListener("change", function () {
      if (!styleReady) return; // the load handler catches up
      map.getSource("buildings").setTiles([buildingTiles()]);
      loadClasses().catch(showError);
      if (selected != null) openBuilding(selected);
    });
    $("b3d-controls").addEventListener("submit", function (event) { event.preventDefault(); });
    $("building-close").addEventListener("click", function () {
      $("building").hidden = true;
      $("building-empty").hidden = false;
      select(null);
    });

    var tilesForDays = days();
    map.on("load", function () {
      styleReady = true;
      if (days() !== tilesForDays) map.getSource("buildings").setTiles([buildingTiles()]);
      (start ? Promise.resolve() : fitToScope())
        .then(loadClasses)
        .then(function () {
          renderLegend();
          map.once("idle", function () { document.body.dataset.buildings3dReady = "1"; });
          map.triggerRepaint();
        })
        .catch(showError);
    });
  }

  document.addEventListener("DOMContentLoaded", init);
})();
