/* The grid worker's phone app (/m/): plain JavaScript over the REST API (docs/api.md).
 *
 * Offline first: the shell comes from the service worker's cache, reference data
 * (profile, grids, categories, tasks) from IndexedDB copies, and every report goes to the
 * IndexedDB outbox (queue.js) before it is sent, so nothing is lost on a reload, a closed
 * app or a basement without signal.
 */
(function () {
  "use strict";

  var config = JSON.parse(document.getElementById("app-config").textContent);
  var API = config.api;
  var Q = window.GridQueue;
  var state = { token: null, user: null, categories: [], chosenCategory: null, photos: [], position: null, taskPhotos: [] };

  function $(id) { return document.getElementById(id); }
  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  var toastTimer = null;
  function toast(text) {
    var box = $("toast");
    box.textContent = text;
    box.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { box.hidden = true; }, 3500);
  }

  function formatTime(iso) {
    if (!iso) return "";
    var d = new Date(iso);
    function two(n) { return (n < 10 ? "0" : "") + n; }
    return (d.getMonth() + 1) + "-" + two(d.getDate()) + " " + two(d.getHours()) + ":" + two(d.getMinutes());
  }

  // --- GCJ-02 for AMap tiles: our data stays WGS84, only what is drawn is shifted ------------------
  var PI = Math.PI, A = 6378245.0, EE = 0.00669342162296594323;
  function outOfChina(lng, lat) { return lng < 72.004 || lng > 137.8347 || lat < 0.8293 || lat > 55.8271; }
  function shiftLat(x, y) {
    var r = -100 + 2 * x + 3 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x));
    r += (20 * Math.sin(6 * x * PI) + 20 * Math.sin(2 * x * PI)) * 2 / 3;
    r += (20 * Math.sin(y * PI) + 40 * Math.sin(y / 3 * PI)) * 2 / 3;
    return r + (160 * Math.sin(y / 12 * PI) + 320 * Math.sin(y * PI / 30)) * 2 / 3;
  }
  function shiftLng(x, y) {
    var r = 300 + x + 2 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x));
    r += (20 * Math.sin(6 * x * PI) + 20 * Math.sin(2 * x * PI)) * 2 / 3;
    r += (20 * Math.sin(x * PI) + 40 * Math.sin(x / 3 * PI)) * 2 / 3;
    return r + (150 * Math.sin(x / 12 * PI) + 300 * Math.sin(x / 30 * PI)) * 2 / 3;
  }
  function wgsToGcj(lng, lat) {
    if (outOfChina(lng, lat)) return [lng, lat];
    var dLat = shiftLat(lng - 105, lat - 35), dLng = shiftLng(lng - 105, lat - 35);
    var radLat = lat / 180 * PI, magic = 1 - EE * Math.sin(radLat) * Math.sin(radLat), sqrtMagic = Math.sqrt(magic);
    dLat = (dLat * 180) / ((A * (1 - EE)) / (magic * sqrtMagic) * PI);
    dLng = (dLng * 180) / (A / sqrtMagic * Math.cos(radLat) * PI);
    return [lng + dLng, lat + dLat];
  }
  var gcj = config.baseMap.crs === "gcj02";
  /* WGS84 [lng, lat] → the LatLng drawn on the configured base map. */
  function toMap(lng, lat) {
    var p = gcj ? wgsToGcj(lng, lat) : [lng, lat];
    return L.latLng(p[1], p[0]);
  }
  /* A LatLng on the map (e.g. a dragged pin) → WGS84 [lng, lat]. */
  function fromMap(latlng) {
    if (!gcj) return [latlng.lng, latlng.lat];
    var w = [latlng.lng, latlng.lat];
    for (var i = 0; i < 6; i++) {
      var g = wgsToGcj(w[0], w[1]);
      w = [w[0] + latlng.lng - g[0], w[1] + latlng.lat - g[1]];
    }
    return w;
  }

  function makeMap(id, options) {
    var map = L.map(id, Object.assign({ zoomControl: true, attributionControl: config.baseMap.layers.length > 0 }, options || {}));
    config.baseMap.layers.forEach(function (layer) { L.tileLayer(layer.url, layer.options).addTo(map); });
    map.setView(L.latLng(config.baseMap.center[0], config.baseMap.center[1]), config.baseMap.zoom);
    return map;
  }

  // --- API ----------------------------------------------------------------------------------------
  function api(path, options) {
    options = options || {};
    var headers = Object.assign({}, options.headers || {});
    if (state.token) headers.Authorization = "Token " + state.token;
    if (options.json !== undefined) {
      headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(options.json);
    }
    return fetch(API + path, { method: options.method || "GET", headers: headers, body: options.body }).then(function (response) {
      if (response.status === 401 && state.token) {
        showLogin("登录已过期，请重新登录（待发送的上报会保留）");
        throw new Error("unauthorized");
      }
      return response;
    });
  }
  function apiJson(path, options) {
    return api(path, options).then(function (response) {
      return response.json().then(function (body) {
        if (!response.ok) { var error = new Error("http " + response.status); error.body = body; throw error; }
        return body;
      });
    });
  }
  /* GET with an IndexedDB copy: the copy is shown when the network is not there. */
  function cached(path, key) {
    return apiJson(path).then(function (body) { Q.setValue(key, body); return body; }, function () { return Q.getValue(key); });
  }
  function errorText(body) {
    if (!body) return "网络不可用";
    if (body.detail) return body.detail;
    return Object.keys(body).map(function (f) { var v = body[f]; return Array.isArray(v) ? v.join("；") : JSON.stringify(v); }).join("\n");
  }

  // --- login --------------------------------------------------------------------------------------
  function showLogin(message) {
    state.token = null;
    Q.deleteValue("token");
    $("app").hidden = true;
    $("tabs").hidden = true;
    $("login-view").hidden = false;
    $("login-error").textContent = message || "";
  }

  $("login-form").addEventListener("submit", function (event) {
    event.preventDefault();
    $("login-error").textContent = "";
    fetch(API + "/auth/token", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username: $("username").value.trim(), password: $("password").value }),
    }).then(function (response) {
      return response.json().then(function (body) {
        if (!response.ok) throw body;
        return Promise.all([Q.setValue("token", body.token), Q.setValue("user", body.user)]).then(function () {
          state.token = body.token;
          state.user = body.user;
          $("password").value = "";
          start();
        });
      });
    }).catch(function (body) {
      $("login-error").textContent = body && (body.non_field_errors || body.detail) ? errorText(body) : "无法连接服务器，请检查网络";
    });
  });

  $("logout").addEventListener("click", function () {
    api("/auth/logout", { method: "POST" }).catch(function () {}).then(function () {
      Q.deleteValue("user");
      showLogin("已退出登录");
    });
  });

  // --- views --------------------------------------------------------------------------------------
  var views = ["view-map", "view-report", "view-tasks", "view-outbox", "view-me"];
  function show(viewId) {
    views.forEach(function (id) { $(id).hidden = id !== viewId; });
    Array.prototype.forEach.call(document.querySelectorAll(".tabs button"), function (b) {
      b.classList.toggle("active", b.getAttribute("data-view") === viewId);
    });
    $("title").textContent = $(viewId).getAttribute("data-title");
    if (viewId === "view-map") openMainMap();
    if (viewId === "view-report") openReport();
    if (viewId === "view-tasks") loadTasks();
    if (viewId === "view-outbox") renderOutbox();
    if (viewId === "view-me") loadMe();
  }
  Array.prototype.forEach.call(document.querySelectorAll(".tabs button"), function (button) {
    button.addEventListener("click", function () { show(button.getAttribute("data-view")); });
  });

  function setNetStatus() {
    var online = navigator.onLine;
    $("net-status").textContent = online ? "在线" : "离线";
    $("net-status").setAttribute("data-online", online ? "true" : "false");
  }
  window.addEventListener("online", function () { setNetStatus(); flush(); });
  window.addEventListener("offline", setNetStatus);

  // --- position -------------------------------------------------------------------------------------
  var watchers = [];
  function onPosition(callback) { watchers.push(callback); if (state.position) callback(state.position); }
  function startGeolocation() {
    if (!navigator.geolocation) return;
    navigator.geolocation.watchPosition(function (pos) {
      state.position = { lng: pos.coords.longitude, lat: pos.coords.latitude, accuracy: pos.coords.accuracy, time: pos.timestamp };
      watchers.forEach(function (w) { w(state.position); });
    }, function () {
      if (!state.position) $("location-text").textContent = "无法获取定位，请拖动图钉到问题位置";
    }, { enableHighAccuracy: true, maximumAge: 10000, timeout: 20000 });
  }

  // --- map of my grids ---------------------------------------------------------------------------
  var mainMap = null, meMarker = null, gridLayer = null;
  function gridsLayer(geojson) {
    return L.geoJSON(geojson, {
      coordsToLatLng: function (c) { return toMap(c[0], c[1]); },
      style: { color: "#0b3d91", weight: 2, fillOpacity: 0.08 },
      onEachFeature: function (feature, layer) { layer.bindTooltip(feature.properties.name || feature.properties.code); },
    });
  }
  function openMainMap() {
    if (!mainMap) {
      mainMap = makeMap("map");
      onPosition(function (p) {
        var at = toMap(p.lng, p.lat);
        if (!meMarker) {
          meMarker = L.marker(at, { icon: L.divIcon({ className: "", html: '<div class="me-marker"></div>', iconSize: [22, 22] }) }).addTo(mainMap);
        } else {
          meMarker.setLatLng(at);
        }
      });
    }
    setTimeout(function () { mainMap.invalidateSize(); }, 0);
    cached("/me/grids", "grids").then(function (geojson) {
      if (!geojson || !geojson.features) return;
      if (gridLayer) mainMap.removeLayer(gridLayer);
      gridLayer = gridsLayer(geojson).addTo(mainMap);
      if (geojson.features.length) mainMap.fitBounds(gridLayer.getBounds(), { padding: [10, 10], animate: false });
    });
  }

  // --- patrol: the track is recorded while the app is open -------------------------------------------
  var patrol = null, lastPoint = null, patrolTimer = null;
  function patrolUi() {
    $("patrol-toggle").textContent = patrol ? "结束巡查" : "开始巡查";
    $("patrol-info").textContent = patrol ? "巡查中，已记录 " + patrol.points + " 个点" : "";
  }
  function recordPoint(p) {
    if (!patrol) return;
    var here = L.latLng(p.lat, p.lng);
    if (lastPoint && p.time - lastPoint.time < 10000 && here.distanceTo(lastPoint.at) < 10) return;
    lastPoint = { at: here, time: p.time };
    patrol.points += 1;
    Q.setValue("patrol", patrol);
    Q.addPoint({ sessionId: patrol.id, lon: p.lng, lat: p.lat, accuracy: p.accuracy, recordedAt: new Date(p.time).toISOString() });
    patrolUi();
  }
  onPosition(recordPoint);
  $("patrol-toggle").addEventListener("click", function () {
    if (!patrol) {
      apiJson("/patrols", { method: "POST" }).then(function (session) {
        patrol = { id: session.id, points: 0 };
        Q.setValue("patrol", patrol);
        patrolTimer = setInterval(function () { Q.flushPoints(); }, 30000);
        if (state.position) recordPoint(state.position);
        patrolUi();
        toast("巡查开始，应用打开期间记录轨迹");
      }, function () { toast("开始巡查需要联网"); });
      return;
    }
    var ending = patrol;
    Q.flushPoints().then(function () {
      return apiJson("/patrols/" + ending.id + "/stop", { method: "POST" });
    }).then(function (session) {
      patrol = null;
      clearInterval(patrolTimer);
      Q.deleteValue("patrol");
      patrolUi();
      toast("巡查结束，里程 " + Math.round(session.length_m || 0) + " 米");
    }, function () { toast("结束巡查需要联网，轨迹点已保存在手机上"); });
  });

  // --- report -----------------------------------------------------------------------------------------
  var reportMap = null, pin = null, pinMoved = false, reportLocation = null;
  function setReportLocation(lngLat, accuracy, fromGps) {
    reportLocation = { lng: lngLat[0], lat: lngLat[1], accuracy: accuracy };
    $("location-text").textContent = "位置 " + lngLat[0].toFixed(6) + ", " + lngLat[1].toFixed(6) +
      (fromGps && accuracy ? "（精度约 " + Math.round(accuracy) + " 米）" : "（已手动调整）");
    $("location-text").setAttribute("data-ready", "true");
  }
  function openReport() {
    if (!reportMap) {
      reportMap = makeMap("report-map", { zoomControl: false });
      pin = L.marker(reportMap.getCenter(), { draggable: true }).addTo(reportMap);
      pin.on("dragend", function () {
        pinMoved = true;
        setReportLocation(fromMap(pin.getLatLng()), null, false);
      });
      Q.getValue("grids").then(function (geojson) { if (geojson && geojson.features) gridsLayer(geojson).addTo(reportMap); });
      onPosition(function (p) {
        if (pinMoved) return;
        var at = toMap(p.lng, p.lat);
        pin.setLatLng(at);
        reportMap.setView(at, 17);
        setReportLocation([p.lng, p.lat], p.accuracy, true);
      });
    }
    setTimeout(function () { reportMap.invalidateSize(); }, 0);
    renderCategories();
  }

  function flattenCategories(tree) {
    var list = [];
    (tree || []).forEach(function (kind) {
      kind.majors.forEach(function (major) {
        major.categories.forEach(function (c) {
          list.push({ code: c.code, name: c.name, major: major.name, kind: kind.name, condition: c.filing_condition });
        });
      });
    });
    return list;
  }
  function loadCategories() {
    return cached("/categories", "categories").then(function (tree) { state.categories = flattenCategories(tree); renderCategories(); });
  }
  function renderCategories() {
    var term = $("category-search").value.trim();
    var list = $("category-list");
    list.innerHTML = "";
    if (state.chosenCategory && !term) return;
    Q.getValue("recentCategories").then(function (recent) {
      recent = recent || [];
      var found = state.categories.filter(function (c) {
        return !term || (c.name + c.major + c.code + c.condition).indexOf(term) >= 0;
      });
      found.sort(function (a, b) {
        var ra = recent.indexOf(a.code), rb = recent.indexOf(b.code);
        return (ra < 0 ? 99 : ra) - (rb < 0 ? 99 : rb);
      });
      list.innerHTML = "";
      found.slice(0, 30).forEach(function (c) {
        var item = el("li", { "data-code": c.code }, c.major + " · " + c.name);
        item.appendChild(el("small", {}, "立案条件：" + c.condition));
        item.addEventListener("click", function () { chooseCategory(c); });
        list.appendChild(item);
      });
    });
  }
  function chooseCategory(category) {
    state.chosenCategory = category;
    $("category-chosen").hidden = false;
    $("category-chosen").textContent = "类别：" + category.major + " · " + category.name + "（点此更换）";
    $("category-search").value = "";
    $("category-list").innerHTML = "";
  }
  $("category-chosen").addEventListener("click", function () {
    state.chosenCategory = null;
    $("category-chosen").hidden = true;
    renderCategories();
  });
  $("category-search").addEventListener("input", renderCategories);

  /* Phone photos are large: above 1.5 MB they are scaled to 1600 px, which a weak signal can carry. */
  function preparePhoto(file) {
    if (file.size <= 1.5 * 1024 * 1024 || !window.createImageBitmap) return Promise.resolve(file);
    return createImageBitmap(file).then(function (bitmap) {
      var scale = Math.min(1, 1600 / Math.max(bitmap.width, bitmap.height));
      var canvas = el("canvas");
      canvas.width = Math.round(bitmap.width * scale);
      canvas.height = Math.round(bitmap.height * scale);
      canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
      return new Promise(function (resolve) { canvas.toBlob(function (blob) { resolve(blob || file); }, "image/jpeg", 0.85); });
    }).catch(function () { return file; });
  }
  function addPhotos(input, target, previews) {
    Promise.all(Array.prototype.map.call(input.files, preparePhoto)).then(function (blobs) {
      blobs.forEach(function (blob) {
        if (target.length >= 6) return;
        target.push(blob);
        var img = el("img", { alt: "照片" });
        img.src = URL.createObjectURL(blob);
        previews.appendChild(img);
      });
      input.value = "";
    });
  }
  $("photo-input").addEventListener("change", function () { addPhotos(this, state.photos, $("photo-previews")); });

  $("report-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var problems = [];
    if (!state.chosenCategory) problems.push("请选择类别");
    if (!reportLocation) problems.push("还没有位置：请等待定位或拖动图钉");
    if (!$("description").value.trim()) problems.push("请填写问题描述");
    $("report-error").textContent = problems.join("\n");
    if (problems.length) return;
    var fields = {
      category: state.chosenCategory.code,
      longitude: reportLocation.lng.toFixed(7),
      latitude: reportLocation.lat.toFixed(7),
      description: $("description").value.trim(),
      device_time: new Date().toISOString(),
    };
    if (reportLocation.accuracy) fields.accuracy_m = String(Math.round(reportLocation.accuracy * 10) / 10);
    var report = {
      userId: state.user.id,
      fields: fields,
      photos: state.photos.slice(),
      label: state.chosenCategory.major + " · " + state.chosenCategory.name,
    };
    Q.getValue("recentCategories").then(function (recent) {
      recent = (recent || []).filter(function (c) { return c !== fields.category; });
      recent.unshift(fields.category);
      return Q.setValue("recentCategories", recent.slice(0, 8));
    });
    // Queued first, sent second: from here on the report survives a reload or a dead battery.
    Q.enqueueReport(report).then(function () {
      resetReportForm();
      toast(navigator.onLine ? "已保存，正在发送…" : "当前离线：已保存到待发送，联网后自动发送");
      updateBadges();
      flush();
    }, function () { $("report-error").textContent = "保存失败：手机存储不可用"; });
  });
  function resetReportForm() {
    state.photos = [];
    $("photo-previews").innerHTML = "";
    $("description").value = "";
    $("report-error").textContent = "";
    pinMoved = false;
    if (state.position) setReportLocation([state.position.lng, state.position.lat], state.position.accuracy, true);
  }

  // --- outbox -----------------------------------------------------------------------------------------
  var flushTimer = null;
  function flush() {
    return Q.flushAll().then(function (summary) {
      if (summary.sent) toast("已发送 " + summary.sent + " 条上报");
      if (summary.needLogin) showLogin("请重新登录后发送待发送的上报");
      return refreshOutbox();
    }, refreshOutbox);
  }
  function refreshOutbox() {
    updateBadges();
    if (!$("view-outbox").hidden) renderOutbox();
  }
  function updateBadges() {
    return Q.allReports().then(function (reports) {
      var mine = reports.filter(function (r) { return state.user && r.userId === state.user.id; });
      var badge = $("outbox-count");
      badge.hidden = mine.length === 0;
      badge.textContent = String(mine.length);
      clearTimeout(flushTimer);
      if (mine.some(function (r) { return r.status === "pending"; })) flushTimer = setTimeout(flush, 10000);
    });
  }
  function renderOutbox() {
    Q.allReports().then(function (reports) {
      var list = $("outbox-list");
      list.innerHTML = "";
      reports.forEach(function (r) {
        var item = el("li", { class: r.status === "failed" ? "failed outbox-item" : "outbox-item", "data-key": r.key });
        item.appendChild(el("span", { class: "when" }, formatTime(r.createdAt)));
        item.appendChild(el("strong", {}, r.label || r.fields.category));
        item.appendChild(el("div", {}, r.fields.description));
        var status = r.status === "failed" ? "未被受理：" + (r.error || "") : "等待发送" + (r.error ? "（" + r.error + "）" : "");
        if (state.user && r.userId !== state.user.id) status = "属于其他账号，登录该账号后发送";
        item.appendChild(el("div", { class: "muted" }, (r.photos || []).length + " 张照片 · " + status));
        if (r.status === "failed") {
          var remove = el("button", { type: "button", class: "link" }, "删除");
          remove.addEventListener("click", function () { Q.deleteReport(r.key).then(refreshOutbox); });
          item.appendChild(remove);
        }
        list.appendChild(item);
      });
      $("outbox-empty").hidden = reports.length > 0;
    });
    Q.getValue("sent").then(function (sent) {
      var list = $("sent-list");
      list.innerHTML = "";
      (sent || []).forEach(function (s) {
        var item = el("li", { class: "sent-item" });
        item.appendChild(el("span", { class: "when" }, formatTime(s.sentAt)));
        item.appendChild(el("strong", {}, s.number));
        item.appendChild(el("div", { class: "muted" }, s.category + " · " + s.photos + " 张照片"));
        list.appendChild(item);
      });
    });
  }
  $("outbox-send").addEventListener("click", flush);
  if (navigator.serviceWorker) {
    navigator.serviceWorker.addEventListener("message", function (event) {
      if (event.data && event.data.type === "outbox-flushed") refreshOutbox();
    });
  }

  // --- tasks ------------------------------------------------------------------------------------------
  function deadlineText(task) {
    if (!task.deadline) return "";
    var minutes = Math.round((new Date(task.deadline) - Date.now()) / 60000);
    var span = Math.floor(Math.abs(minutes) / 60) + " 小时 " + (Math.abs(minutes) % 60) + " 分";
    return minutes < 0 ? "已超时 " + span : "剩余 " + span + "（" + formatTime(task.deadline) + " 前）";
  }
  function loadTasks() {
    return cached("/me/tasks", "tasks").then(function (tasks) {
      tasks = tasks || [];
      var list = $("task-list");
      list.innerHTML = "";
      tasks.forEach(function (task) {
        var item = el("li", { class: "task-item light-" + (task.timer_light || "none"), "data-id": task.id });
        item.appendChild(el("span", { class: "when" }, task.task_display));
        item.appendChild(el("strong", {}, task.category_name));
        item.appendChild(el("div", {}, task.description));
        item.appendChild(el("div", { class: "deadline-" + (task.timer_light || "green") }, deadlineText(task)));
        item.addEventListener("click", function () { openTask(task); });
        list.appendChild(item);
      });
      $("task-empty").hidden = tasks.length > 0;
      $("task-count").hidden = tasks.length === 0;
      $("task-count").textContent = String(tasks.length);
    });
  }
  var currentTask = null;
  function openTask(task) {
    currentTask = task;
    state.taskPhotos = [];
    $("task-list").hidden = true;
    $("task-detail").hidden = false;
    $("task-title").textContent = task.task_display + "：" + task.category_name;
    $("task-meta").textContent = task.number + " · " + (task.address || "") + " · " + deadlineText(task);
    $("task-description").textContent = task.description;
    $("task-yes").textContent = task.task === "verify" ? "属实" : "核查通过";
    $("task-no").textContent = task.task === "verify" ? "不属实" : "不通过（返工）";
    $("task-error").textContent = "";
    $("task-comment").value = "";
    $("task-photo-previews").innerHTML = "";
    var photos = $("task-photos");
    photos.innerHTML = "";
    (task.photos || []).forEach(function (photo) {
      api(photo.url.replace(API, "")).then(function (r) { return r.blob(); }).then(function (blob) {
        var img = el("img", { alt: photo.stage_display });
        img.src = URL.createObjectURL(blob);
        photos.appendChild(img);
      }).catch(function () {});
    });
  }
  $("task-photo-input").addEventListener("change", function () { addPhotos(this, state.taskPhotos, $("task-photo-previews")); });
  $("task-close").addEventListener("click", function () { $("task-detail").hidden = true; $("task-list").hidden = false; });
  function completeTask(ok) {
    var task = currentTask;
    var action = task.task === "verify" ? "verify" : (ok ? "check_pass" : "check_fail");
    var form = new FormData();
    if (task.task === "verify") form.append("confirmed", ok ? "true" : "false");
    form.append("comment", $("task-comment").value.trim());
    state.taskPhotos.forEach(function (blob, i) { form.append("photos", blob, "task" + i + ".jpg"); });
    api("/cases/" + task.id + "/actions/" + action, { method: "POST", body: form }).then(function (response) {
      return response.json().then(function (body) {
        if (!response.ok) { $("task-error").textContent = errorText(body); return; }
        toast("已提交：" + body.state_display);
        $("task-detail").hidden = true;
        $("task-list").hidden = false;
        loadTasks();
      });
    }, function () { $("task-error").textContent = "提交任务需要联网，请稍后再试"; });
  }
  $("task-yes").addEventListener("click", function () { completeTask(true); });
  $("task-no").addEventListener("click", function () { completeTask(false); });

  // --- me -----------------------------------------------------------------------------------------------
  function loadMe() {
    var profile = $("profile");
    profile.textContent = (state.user.full_name || state.user.username) + "（" + state.user.role_display + "） 网格：" +
      (state.user.grid_codes || []).join("、");
    cached("/me/reports?limit=20", "reports").then(function (page) {
      var list = $("report-list");
      list.innerHTML = "";
      ((page && page.results) || []).forEach(function (r) {
        var item = el("li", { class: "light-" + (r.timer_light || "none") });
        item.appendChild(el("span", { class: "when" }, formatTime(r.reported_at)));
        item.appendChild(el("strong", {}, r.number + " " + r.state_display));
        item.appendChild(el("div", {}, r.category_name + "：" + r.description));
        var steps = (r.timeline || []).map(function (t) { return t.action_display; }).join(" → ");
        item.appendChild(el("div", { class: "muted" }, steps));
        list.appendChild(item);
      });
    });
  }

  // --- start --------------------------------------------------------------------------------------------
  var started = false;
  function start() {
    $("login-view").hidden = true;
    $("app").hidden = false;
    $("tabs").hidden = false;
    setNetStatus();
    if (!started) {
      started = true;
      startGeolocation();
      setInterval(loadTasks, 5 * 60000);
    }
    Q.getValue("patrol").then(function (saved) {
      patrol = saved;
      if (patrol) patrolTimer = setInterval(function () { Q.flushPoints(); }, 30000);
      patrolUi();
    });
    loadCategories();
    loadTasks();
    show("view-report");
    flush();
  }

  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register(config.serviceWorker, { scope: "./" }).catch(function () {});
  }
  setNetStatus();
  Promise.all([Q.getValue("token"), Q.getValue("user")]).then(function (found) {
    state.token = found[0];
    state.user = found[1];
    if (state.token && state.user) start(); else showLogin(found[1] ? "请重新登录" : "");
  }, function () { showLogin("此浏览器不支持离线存储，无法使用离线上报"); });
})();
