/* Command-center map dashboard (指挥地图).
 *
 * Grid polygons come once, as vector tiles (id and code only); the chosen layer's values
 * come as an id → value map and are applied with setFeatureStyle, so switching the layer
 * recolours without reloading a tile. Cases are clustered markers coloured by timer
 * light; a small "changes since" request every few seconds keeps them live.
 */
(function () {
  "use strict";

  var PALETTE = ["#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026"];
  var NO_VALUE = "#d9d9d9";
  var LIGHT_RANK = { red: 3, yellow: 2, green: 1, "": 0 };

  var cfg = null;
  var map = null;
  var gridLayer = null;
  var clusters = null;
  var markers = {}; // case id → marker
  var layerData = { values: {}, classes: { bins: [] }, unit: "" };
  var gridIds = new Set(); // every grid id seen in a tile
  var selectedGrid = null;
  var since = null;
  var pollTimer = null;
  var workersLayer = null;
  var workersTimer = null;
  var pyramidChart = null;

  function $(id) { return document.getElementById(id); }

  function esc(text) {
    return String(text == null ? "" : text).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  function fmtTime(iso) {
    if (!iso) return "";
    var d = new Date(iso);
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    return (d.getMonth() + 1) + "-" + pad(d.getDate()) + " " + pad(d.getHours()) + ":" + pad(d.getMinutes());
  }

  function filterParams(extra) {
    var form = $("filters");
    var params = new URLSearchParams();
    ["first_day", "last_day", "category", "state", "street", "community"].forEach(function (name) {
      var value = form.elements[name].value;
      if (value) params.set(name, value);
    });
    Object.keys(extra || {}).forEach(function (key) { params.set(key, extra[key]); });
    return params;
  }

  function getJSON(url, params) {
    return fetch(url + (params ? "?" + params.toString() : ""), {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    }).then(function (response) {
      if (!response.ok) {
        return response.json().catch(function () { return {}; }).then(function (body) {
          throw new Error(body.error || ("HTTP " + response.status));
        });
      }
      return response.json();
    });
  }

  // --- the choropleth -----------------------------------------------------------------

  function classIndex(value) {
    var bins = layerData.classes.bins || [];
    if (value == null || !bins.length) return -1;
    for (var i = 0; i < bins.length; i++) if (value <= bins[i]) return i;
    return bins.length - 1;
  }

  function colourOf(value) {
    var bins = layerData.classes.bins || [];
    var index = classIndex(value);
    if (index < 0) return NO_VALUE;
    // Fewer classes than colours: use the dark end of the ramp.
    return PALETTE[Math.min(index + PALETTE.length - bins.length, PALETTE.length - 1)];
  }

  function gridStyle(id) {
    var key = String(id);
    var has = Object.prototype.hasOwnProperty.call(layerData.values, key);
    var selected = selectedGrid === id;
    return {
      fill: true,
      fillColor: has ? colourOf(layerData.values[key]) : NO_VALUE,
      fillOpacity: has ? 0.7 : 0.15,
      color: selected ? "#0b3d91" : "#44505c",
      weight: selected ? 3 : 0.8,
      opacity: has ? 0.9 : 0.3,
    };
  }

  function recolour() {
    gridIds.forEach(function (id) { gridLayer.setFeatureStyle(id, gridStyle(id)); });
    renderLegend();
  }

  function renderLegend() {
    var bins = layerData.classes.bins || [];
    var html = '<div class="title">' + esc(layerData.label || "") + "（" + esc(layerData.unit) + "）</div>";
    var lower = layerData.classes.min;
    bins.forEach(function (upper) {
      html += '<div class="row"><span class="swatch" style="background:' + colourOf(upper) + '"></span>' +
        (lower === upper ? esc(fmtNumber(upper)) : esc(fmtNumber(lower)) + " – " + esc(fmtNumber(upper))) + "</div>";
      lower = upper;
    });
    html += '<div class="row"><span class="swatch" style="background:' + NO_VALUE + '"></span>无数据 / 不在筛选范围</div>';
    html += '<div class="title">案件计时</div><div class="lights"><span class="light-green"></span>正常' +
      '<span class="light-yellow"></span>将超时<span class="light-red"></span>已超时<span class="light-none"></span>不计时</div>';
    $("legend").innerHTML = html;
  }

  function fmtNumber(value) {
    if (value == null) return "";
    return Math.abs(value) >= 100 ? Math.round(value).toString() : (Math.round(value * 100) / 100).toString();
  }

  function loadLayer() {
    var params = filterParams({ layer: $("layer").value, scheme: $("scheme").value });
    return getJSON(cfg.urls.layer, params).then(function (data) {
      layerData = data;
      document.body.dataset.layer = data.layer;
      recolour();
    });
  }

  // --- cases --------------------------------------------------------------------------

  function caseIcon(item) {
    return L.divIcon({
      className: "",
      html: '<div class="case-marker light-' + (item.light || "none") + '" data-case-id="' + item.id + '" title="' +
        esc(item.number + " " + item.category + " " + item.state_label) + '"></div>',
      iconSize: [18, 18],
      iconAnchor: [9, 9],
    });
  }

  function upsertMarker(item) {
    var existing = markers[item.id];
    if (existing) {
      existing.setLatLng([item.lat, item.lon]);
      existing.setIcon(caseIcon(item));
      existing.options.light = item.light;
      clusters.refreshClusters(existing);
      return;
    }
    var marker = L.marker([item.lat, item.lon], { icon: caseIcon(item), light: item.light, keyboard: false });
    marker.bindTooltip(item.number + " " + item.category + "（" + item.state_label + "）");
    marker.on("click", function () { openCase(item.id); });
    markers[item.id] = marker;
    clusters.addLayer(marker);
  }

  function removeMarker(id) {
    var marker = markers[id];
    if (!marker) return;
    clusters.removeLayer(marker);
    delete markers[id];
  }

  function loadCases() {
    return getJSON(cfg.urls.cases, filterParams()).then(function (data) {
      clusters.clearLayers();
      markers = {};
      data.cases.forEach(upsertMarker);
      since = data.now;
      setLive(data.truncated ? "仅显示最新 " + data.cases.length + " 件，请缩小筛选范围" : null);
    });
  }

  function addToFeed(item) {
    var feed = $("feed");
    var empty = feed.querySelector(".empty");
    if (empty) empty.remove();
    var old = feed.querySelector('[data-case-id="' + item.id + '"]');
    if (old) old.remove();
    var li = document.createElement("li");
    li.className = "fresh";
    li.dataset.caseId = item.id;
    li.innerHTML = '<span class="case-marker light-' + (item.light || "none") + '" style="display:inline-block;width:12px;height:12px"></span> ' +
      "<b>" + esc(item.number) + "</b> " + esc(item.category) + "<small>" + esc(item.state_label) + " · " + fmtTime(item.reported_at) + "</small>";
    li.addEventListener("click", function () { openCase(item.id); map.setView([item.lat, item.lon], Math.max(map.getZoom(), 17)); });
    feed.insertBefore(li, feed.firstChild);
    while (feed.children.length > 30) feed.removeChild(feed.lastChild);
  }

  function poll() {
    if (!since) return;
    getJSON(cfg.urls.changes, filterParams({ since: since })).then(function (data) {
      since = data.now;
      data.cases.forEach(function (item) {
        var isNew = !markers[item.id];
        upsertMarker(item);
        if (isNew) addToFeed(item);
      });
      data.removed.forEach(removeMarker);
      if (data.cases.length || data.removed.length) {
        loadOverdue();
        if (["open_cases", "incident_density", "incident_rate"].indexOf($("layer").value) >= 0) loadLayer();
      }
      setLive(null);
    }).catch(function (error) { setLive("实时更新中断：" + error.message + "（将自动重试）", true); });
  }

  function setLive(message, isError) {
    var box = $("live-status");
    var now = new Date();
    box.textContent = message || ("实时更新：" + now.toLocaleTimeString("zh-CN", { hour12: false }));
    box.classList.toggle("error", !!isError);
  }

  function loadOverdue() {
    return getJSON(cfg.urls.overdue, filterParams()).then(function (data) {
      var list = $("overdue");
      $("overdue-count").textContent = data.cases.length;
      list.innerHTML = "";
      data.cases.forEach(function (item) {
        var li = document.createElement("li");
        li.dataset.caseId = item.id;
        li.innerHTML = '<span class="hours">超 ' + item.overdue_hours + " 小时</span><b>" + esc(item.number) + "</b> " +
          esc(item.category) + "<small>" + esc(item.grid) + " · " + esc(item.state_label) +
          (item.department ? " · " + esc(item.department) : "") + "</small>";
        li.addEventListener("click", function () { openCase(item.id); });
        list.appendChild(li);
      });
      if (!data.cases.length) list.innerHTML = '<li class="empty">无超期案件</li>';
    });
  }

  // --- panels -------------------------------------------------------------------------

  function showDetail(html) {
    $("detail-body").innerHTML = html;
    $("detail").hidden = false;
  }

  function openGrid(id) {
    var previous = selectedGrid;
    selectedGrid = id;
    if (previous != null) gridLayer.setFeatureStyle(previous, gridStyle(previous));
    gridLayer.setFeatureStyle(id, gridStyle(id));
    getJSON(cfg.urls.grid.replace("{id}", id)).then(renderGrid).catch(function (error) {
      showDetail('<p class="error">' + esc(error.message) + "</p>");
    });
  }

  // A population count: null when suppressed (under five, for users who may not see the residents).
  function count(n, below) { return n == null ? "&lt;" + (below || 5) : String(n); }

  function population(s) {
    if (!s) return ""; // no right to population figures: the panel has none
    var below = s.suppressed_below;
    return '<table class="population"><tr><td>实有人口</td><td class="n" data-field="population">' + count(s.population, below) + "</td>" +
      '<td>户数</td><td class="n" data-field="households">' + count(s.households, below) + "</td></tr>" +
      '<tr><td>男</td><td class="n" data-field="male">' + count(s.male_total, below) + "</td>" +
      '<td>女</td><td class="n" data-field="female">' + count(s.female_total, below) + "</td></tr></table>" +
      '<canvas id="pyramid" height="190" aria-label="人口年龄结构"></canvas>' +
      (below ? '<p class="muted">不足' + below + "人的数字不显示。</p>" : "") +
      "<h4>重点关注人群（人数）</h4><table>" +
      s.followed.map(function (f) { return "<tr><td>" + esc(f.label) + '</td><td class="n">' + count(f.count, below) + "</td></tr>"; }).join("") +
      "</table>";
  }

  function renderGrid(grid) {
    var s = grid.structure;
    var html = '<div class="grid-panel" data-grid-id="' + grid.id + '"><h3>' + esc(grid.name) + "</h3>" +
      "<p>" + esc(grid.code) + " · " + esc(grid.street) + esc(grid.community) + " · " + grid.area_km2 + " km²</p>" +
      population(s) + "<h4>城市部件</h4><table>" +
      grid.facilities.map(function (f) { return "<tr><td>" + esc(f.label) + '</td><td class="n">' + f.count + "</td></tr>"; }).join("") +
      "</table><h4>网格员</h4><p>" +
      (grid.workers.length ? grid.workers.map(function (w) { return esc(w.name) + (w.primary ? "（专职）" : ""); }).join("、") : "未配备") +
      "</p><h4>近期案件</h4><ul class=\"feed\">" +
      (grid.recent_cases.length ? grid.recent_cases.map(function (c) {
        return '<li data-case-id="' + c.id + '"><span class="case-marker light-' + (c.light || "none") +
          '" style="display:inline-block;width:12px;height:12px"></span> <b>' + esc(c.number) + "</b> " + esc(c.category) +
          "<small>" + esc(c.state_label) + " · " + fmtTime(c.reported_at) + "</small></li>";
      }).join("") : '<li class="empty">无</li>') + "</ul></div>";
    showDetail(html);
    $("detail-body").querySelectorAll("li[data-case-id]").forEach(function (li) {
      li.addEventListener("click", function () { openCase(Number(li.dataset.caseId)); });
    });
    if (pyramidChart) pyramidChart.destroy();
    pyramidChart = null;
    if (!s) return;
    pyramidChart = new Chart($("pyramid"), {
      type: "bar",
      data: {
        labels: s.age_bands.slice().reverse(),
        datasets: [
          { label: "男", data: s.male.slice().reverse().map(function (n) { return n == null ? null : -n; }), backgroundColor: "#4e79a7" },
          { label: "女", data: s.female.slice().reverse(), backgroundColor: "#e15759" },
        ],
      },
      options: {
        indexAxis: "y", animation: false, responsive: true,
        scales: { x: { stacked: true, ticks: { callback: function (v) { return Math.abs(v); } } }, y: { stacked: true } },
        plugins: { tooltip: { callbacks: { label: function (c) { return c.dataset.label + "：" + Math.abs(c.raw); } } } },
      },
    });
  }

  function openCase(id) {
    getJSON(cfg.urls["case"].replace("{id}", id)).then(function (c) {
      var photo = function (pid) {
        var url = cfg.urls.photo.replace("{id}", pid);
        return '<a href="' + url + '" target="_blank" rel="noopener"><img src="' + url + '" alt="案件照片"></a>';
      };
      var html = '<div class="case-panel" data-case-id="' + c.id + '"><h3><span class="case-marker light-' + (c.light || "none") +
        '" style="display:inline-block;width:14px;height:14px"></span> ' + esc(c.number) + "</h3>" +
        "<p>" + esc(c.category) + " · " + esc(c.state_label) + " · " + esc(c.grid) + "</p>" +
        "<p>" + esc(c.description) + (c.address ? "<br><small>" + esc(c.address) + "</small>" : "") + "</p>" +
        (c.department ? "<p>责任部门：" + esc(c.department) + "</p>" : "") +
        (c.deadline ? "<p>环节时限：" + fmtTime(c.deadline) + "</p>" : "") +
        "<h4>流转记录</h4><ol class=\"timeline\">" +
        c.timeline.map(function (row) {
          return "<li><b>" + esc(row.action) + "</b> " + esc(row.from_state) + " → " + esc(row.to_state) +
            "<br><small>" + fmtTime(row.at) + " · " + esc(row.actor) + "（" + esc(row.role) + "）" +
            (row.department ? " · " + esc(row.department) : "") + "</small>" +
            (row.comment ? "<br>" + esc(row.comment) : "") + (row.photos.length ? "<br>" + row.photos.map(photo).join("") : "") + "</li>";
        }).join("") + "</ol>" + (c.photos.length ? "<h4>其他照片</h4>" + c.photos.map(photo).join("") : "") + "</div>";
      showDetail(html);
    }).catch(function (error) { showDetail('<p class="error">' + esc(error.message) + "</p>"); });
  }

  // --- 人员监测 ------------------------------------------------------------------------

  function loadWorkers() {
    getJSON(cfg.urls.workers).then(function (data) {
      workersLayer.clearLayers();
      L.geoJSON(data.tracks, { style: { color: "#6a3d9a", weight: 3, opacity: 0.8 } }).addTo(workersLayer);
      data.positions.forEach(function (p) {
        L.circleMarker([p.lat, p.lon], { radius: 8, color: "#fff", weight: 2, fillColor: "#6a3d9a", fillOpacity: 1 })
          .bindTooltip(p.name + " " + fmtTime(p.recorded_at), { permanent: true, direction: "right", className: "worker-label" })
          .addTo(workersLayer);
      });
    }).catch(function (error) { setLive("人员监测：" + error.message, true); });
  }

  function toggleWorkers(on) {
    if (workersTimer) { clearInterval(workersTimer); workersTimer = null; }
    if (on) {
      workersLayer.addTo(map);
      loadWorkers();
      workersTimer = setInterval(loadWorkers, 30000);
    } else {
      map.removeLayer(workersLayer);
    }
  }

  // --- start --------------------------------------------------------------------------

  function fitToScope() {
    return getJSON(cfg.urls.extent, filterParams()).then(function (data) {
      if (data.bbox) map.fitBounds([[data.bbox[1], data.bbox[0]], [data.bbox[3], data.bbox[2]]], { padding: [20, 20] });
    });
  }

  function addBaseMap() {
    if (cfg.base_map === "tianditu" && cfg.tianditu_key) {
      var wmts = function (layer) {
        return "https://t{s}.tianditu.gov.cn/" + layer + "_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER=" + layer +
          "&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}&tk=" + cfg.tianditu_key;
      };
      L.tileLayer(wmts("vec"), { subdomains: "01234567", attribution: "© 天地图" }).addTo(map);
      L.tileLayer(wmts("cva"), { subdomains: "01234567" }).addTo(map);
    }
  }

  window.dashboardInit = function (leafletMap) {
    cfg = JSON.parse($("dashboard-config").textContent);
    map = leafletMap;
    addBaseMap();
    map.createPane("grids");
    map.getPane("grids").style.zIndex = 350;
    gridLayer = L.vectorGrid.protobuf(cfg.urls.tiles, {
      pane: "grids",
      rendererFactory: L.svg.tile,
      interactive: true,
      maxNativeZoom: 18,
      getFeatureId: function (feature) { return feature.properties.id; },
      vectorTileLayerStyles: {
        grids: function (properties) {
          gridIds.add(properties.id);
          return gridStyle(properties.id);
        },
      },
    });
    gridLayer.on("click", function (event) { openGrid(event.layer.properties.id); });
    gridLayer.addTo(map);
    clusters = L.markerClusterGroup({
      disableClusteringAtZoom: 17,
      maxClusterRadius: 50,
      iconCreateFunction: function (cluster) {
        var worst = "";
        cluster.getAllChildMarkers().forEach(function (m) {
          if (LIGHT_RANK[m.options.light || ""] > LIGHT_RANK[worst]) worst = m.options.light;
        });
        return L.divIcon({
          html: '<div class="cluster light-' + (worst || "none") + '">' + cluster.getChildCount() + "</div>",
          className: "", iconSize: [36, 36],
        });
      },
    });
    clusters.addTo(map);
    workersLayer = L.layerGroup();
    window.gridDashboard = { map: map, gridLayer: gridLayer, markers: markers, cfg: cfg };

    $("layer").addEventListener("change", loadLayer);
    $("scheme").addEventListener("change", loadLayer);
    $("filters").addEventListener("change", function (event) {
      var name = event.target.name;
      if (name === "layer" || name === "scheme" || event.target.id === "workers-toggle") return;
      if (name === "street") {
        var street = event.target.value;
        Array.prototype.forEach.call($("filters").elements.community.options, function (option) {
          option.hidden = !!(street && option.dataset.street && option.dataset.street !== street);
        });
      }
      if (name === "street" || name === "community") fitToScope();
      refreshAll();
    });
    $("filters").addEventListener("submit", function (event) { event.preventDefault(); });
    $("detail-close").addEventListener("click", function () {
      $("detail").hidden = true;
      var previous = selectedGrid;
      selectedGrid = null;
      if (previous != null) gridLayer.setFeatureStyle(previous, gridStyle(previous));
    });
    var toggle = $("workers-toggle");
    if (toggle) toggle.addEventListener("change", function () { toggleWorkers(toggle.checked); });

    fitToScope().then(refreshAll).then(function () {
      pollTimer = setInterval(poll, (cfg.poll_seconds || 5) * 1000);
      document.body.dataset.dashboardReady = "1";
    }).catch(function (error) { setLive("加载失败：" + error.message, true); });
  };

  function refreshAll() {
    return Promise.all([loadLayer(), loadCases(), loadOverdue()]);
  }
})();
