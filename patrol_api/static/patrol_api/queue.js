/* The phone's outbox: reports and GPS points kept in IndexedDB until the server has them.
 *
 * Shared by the page and the service worker (importScripts), so a queued report is sent
 * when the network returns even if the app is closed (Background Sync, where the browser
 * has it). Every report carries its idempotency key from the moment it is queued: sending
 * it twice (page and service worker at once, or a retry after a lost answer) still makes
 * one case on the server.
 */
(function (scope) {
  "use strict";

  var DB_NAME = "gridmgmt-phone";
  var DB_VERSION = 1;
  var API = "/api/v1";
  var dbPromise = null;

  function openDb() {
    if (dbPromise) return dbPromise;
    dbPromise = new Promise(function (resolve, reject) {
      var request = indexedDB.open(DB_NAME, DB_VERSION);
      request.onupgradeneeded = function () {
        var db = request.result;
        if (!db.objectStoreNames.contains("reports")) db.createObjectStore("reports", { keyPath: "key" });
        if (!db.objectStoreNames.contains("points")) db.createObjectStore("points", { keyPath: "id", autoIncrement: true });
        if (!db.objectStoreNames.contains("kv")) db.createObjectStore("kv", { keyPath: "k" });
      };
      request.onsuccess = function () { resolve(request.result); };
      request.onerror = function () { dbPromise = null; reject(request.error); };
    });
    return dbPromise;
  }

  function tx(store, mode, work) {
    return openDb().then(function (db) {
      return new Promise(function (resolve, reject) {
        var transaction = db.transaction(store, mode);
        var result;
        transaction.oncomplete = function () { resolve(result); };
        transaction.onerror = function () { reject(transaction.error); };
        transaction.onabort = function () { reject(transaction.error); };
        var request = work(transaction.objectStore(store));
        if (request) request.onsuccess = function () { result = request.result; };
      });
    });
  }

  function getValue(k) {
    return tx("kv", "readonly", function (s) { return s.get(k); }).then(function (row) { return row ? row.v : null; });
  }
  function setValue(k, v) { return tx("kv", "readwrite", function (s) { return s.put({ k: k, v: v }); }); }
  function deleteValue(k) { return tx("kv", "readwrite", function (s) { return s.delete(k); }); }
  /* Read, change and write one value in a single transaction (the page and the service worker both write). */
  function updateValue(k, change) {
    return tx("kv", "readwrite", function (s) {
      var read = s.get(k);
      read.onsuccess = function () { s.put({ k: k, v: change(read.result ? read.result.v : null) }); };
      return null;
    });
  }

  function newKey() {
    if (scope.crypto && scope.crypto.randomUUID) return scope.crypto.randomUUID();
    var bytes = new Uint8Array(16);
    scope.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  // --- reports ------------------------------------------------------------------------------

  function allReports() {
    return tx("reports", "readonly", function (s) { return s.getAll(); }).then(function (rows) {
      return (rows || []).sort(function (a, b) { return a.createdAt < b.createdAt ? -1 : 1; });
    });
  }
  function putReport(report) { return tx("reports", "readwrite", function (s) { return s.put(report); }); }
  function deleteReport(key) { return tx("reports", "readwrite", function (s) { return s.delete(key); }); }
  /* Record an attempt's outcome, unless the report is gone already (sent by the other context meanwhile). */
  function updateReport(report, fields) {
    return tx("reports", "readwrite", function (s) {
      var read = s.get(report.key);
      read.onsuccess = function () {
        if (read.result) s.put(Object.assign(read.result, fields));
      };
      return null;
    });
  }

  /* Queue a report: {userId, fields: {category, longitude, ...}, photos: [Blob]}. Nothing is sent yet. */
  function enqueueReport(report) {
    report.key = report.key || newKey();
    report.createdAt = report.createdAt || new Date().toISOString();
    report.status = "pending";
    report.attempts = 0;
    report.error = null;
    return putReport(report).then(function () {
      if (scope.registration && scope.registration.sync) return report;
      if (scope.navigator && navigator.serviceWorker && navigator.serviceWorker.ready) {
        navigator.serviceWorker.ready
          .then(function (reg) { return reg.sync && reg.sync.register("gridmgmt-outbox"); })
          .catch(function () { /* no Background Sync: the page sends when it is open */ });
      }
      return report;
    });
  }

  function errorText(body) {
    if (!body || typeof body !== "object") return "提交失败";
    if (body.detail) return body.detail;
    return Object.keys(body).map(function (field) {
      var value = body[field];
      return field + "：" + (Array.isArray(value) ? value.join("；") : JSON.stringify(value));
    }).join("\n");
  }

  function sendReport(report, token) {
    var form = new FormData();
    Object.keys(report.fields).forEach(function (name) {
      var value = report.fields[name];
      if (value !== null && value !== undefined && value !== "") form.append(name, value);
    });
    (report.photos || []).forEach(function (blob, i) { form.append("photos", blob, "photo" + i + ".jpg"); });
    return fetch(API + "/cases", {
      method: "POST",
      headers: { Authorization: "Token " + token, "Idempotency-Key": report.key },
      body: form,
    });
  }

  var flushing = null;

  /* Send every pending report of the signed-in user, oldest first. Resolves with a summary. */
  function flushReports() {
    if (flushing) return flushing;
    flushing = Promise.all([getValue("token"), getValue("user"), allReports()])
      .then(function (found) {
        var token = found[0], user = found[1], reports = found[2];
        var summary = { sent: 0, failed: 0, waiting: 0, needLogin: false };
        if (!token || !user) {
          summary.needLogin = reports.length > 0;
          return summary;
        }
        var mine = reports.filter(function (r) { return r.status === "pending" && r.userId === user.id; });
        summary.waiting = mine.length;
        var chain = Promise.resolve(true);
        mine.forEach(function (report) {
          chain = chain.then(function (goOn) {
            if (!goOn) return false;
            report.attempts += 1;
            report.lastAttemptAt = new Date().toISOString();
            return sendReport(report, token).then(function (response) {
              if (response.status === 200 || response.status === 201) {
                return response.json().then(function (body) {
                  summary.sent += 1;
                  summary.waiting -= 1;
                  return deleteReport(report.key)
                    .then(function () { return rememberSent(report, body); })
                    .then(function () { return true; });
                });
              }
              if (response.status === 401) {
                summary.needLogin = true;
                return deleteValue("token").then(function () { return false; });
              }
              if (response.status === 429 || response.status >= 500) {
                return updateReport(report, { attempts: report.attempts, error: "服务器繁忙，稍后自动重试" })
                  .then(function () { return false; });
              }
              // The server refused the report itself: keep it, show why, do not retry by itself.
              return response.json().catch(function () { return null; }).then(function (body) {
                summary.failed += 1;
                summary.waiting -= 1;
                return updateReport(report, { attempts: report.attempts, status: "failed", error: errorText(body) })
                  .then(function () { return true; });
              });
            }, function () {
              return updateReport(report, { attempts: report.attempts, error: "网络不可用，联网后自动发送" })
                .then(function () { return false; });
            });
          });
        });
        return chain.then(function () { return summary; });
      })
      .finally(function () { flushing = null; });
    return flushing;
  }

  function rememberSent(report, body) {
    return updateValue("sent", function (sent) {
      // The page and the service worker may both have sent it (the server made one case): list it once.
      sent = (sent || []).filter(function (s) { return s.key !== report.key; });
      sent.unshift({
        key: report.key,
        number: body.number,
        id: body.id,
        category: report.label || report.fields.category,
        photos: (body.photos || []).length,
        sentAt: new Date().toISOString(),
      });
      return sent.slice(0, 20);
    });
  }

  // --- patrol points ----------------------------------------------------------------------------

  function addPoint(point) { return tx("points", "readwrite", function (s) { return s.add(point); }); }
  function allPoints() { return tx("points", "readonly", function (s) { return s.getAll(); }); }
  function deletePoints(ids) {
    return tx("points", "readwrite", function (s) { ids.forEach(function (id) { s.delete(id); }); return null; });
  }

  /* Send buffered GPS points per patrol in batches; the server ignores points it already has. */
  function flushPoints() {
    return Promise.all([getValue("token"), allPoints()]).then(function (found) {
      var token = found[0], points = found[1] || [];
      if (!token || !points.length) return 0;
      var bySession = {};
      points.forEach(function (p) { (bySession[p.sessionId] = bySession[p.sessionId] || []).push(p); });
      var chain = Promise.resolve(0);
      Object.keys(bySession).forEach(function (sessionId) {
        var batch = bySession[sessionId].slice(0, 500);
        chain = chain.then(function (count) {
          return fetch(API + "/patrols/" + sessionId + "/points", {
            method: "POST",
            headers: { Authorization: "Token " + token, "Content-Type": "application/json" },
            body: JSON.stringify({
              points: batch.map(function (p) {
                return { lon: p.lon, lat: p.lat, recorded_at: p.recordedAt, accuracy_m: p.accuracy };
              }),
            }),
          }).then(function (response) {
            // 200: stored (or already stored); 400/404: these points can never be stored. Either way drop them.
            if (response.status === 200 || response.status === 400 || response.status === 404) {
              return deletePoints(batch.map(function (p) { return p.id; })).then(function () { return count + batch.length; });
            }
            return count;
          }, function () { return count; });
        });
      });
      return chain;
    });
  }

  function flushAll() {
    return flushReports().then(function (summary) {
      return flushPoints().then(function () { return summary; }, function () { return summary; });
    });
  }

  scope.GridQueue = {
    getValue: getValue,
    setValue: setValue,
    deleteValue: deleteValue,
    newKey: newKey,
    allReports: allReports,
    putReport: putReport,
    deleteReport: deleteReport,
    enqueueReport: enqueueReport,
    flushReports: flushReports,
    addPoint: addPoint,
    allPoints: allPoints,
    flushPoints: flushPoints,
    flushAll: flushAll,
  };
})(self);
