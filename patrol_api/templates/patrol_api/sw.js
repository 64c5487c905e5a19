/* Service worker of the phone app (/m/): keeps the app shell for offline use and sends the outbox.
 * Shell version {{ version }}. Served by patrol_api.app_views.service_worker. */
"use strict";
importScripts("{{ queue_js }}");

var SHELL_CACHE = "gridmgmt-shell-{{ version }}";
var SHELL_ASSETS = {{ assets_json|safe }};
var SHELL_PAGE = SHELL_ASSETS[0];

self.addEventListener("install", function (event) {
  event.waitUntil(
    caches.open(SHELL_CACHE)
      .then(function (cache) { return cache.addAll(SHELL_ASSETS); })
      .then(function () { return self.skipWaiting(); })
  );
});

self.addEventListener("activate", function (event) {
  event.waitUntil(
    caches.keys()
      .then(function (names) {
        return Promise.all(names.filter(function (name) {
          return name.indexOf("gridmgmt-shell-") === 0 && name !== SHELL_CACHE;
        }).map(function (name) { return caches.delete(name); }));
      })
      .then(function () { return self.clients.claim(); })
  );
});

self.addEventListener("fetch", function (event) {
  var request = event.request;
  if (request.method !== "GET") return;
  var url = new URL(request.url);
  if (url.origin !== self.location.origin) return; // map tiles go straight to the network
  if (request.mode === "navigate" && url.pathname === SHELL_PAGE) {
    // The shell first from the cache: it opens in a basement as fast as in the office.
    event.respondWith(
      caches.open(SHELL_CACHE).then(function (cache) {
        return cache.match(SHELL_PAGE).then(function (cached) { return cached || fetch(request); });
      })
    );
    return;
  }
  if (SHELL_ASSETS.indexOf(url.pathname) >= 0) {
    event.respondWith(
      caches.match(request, { cacheName: SHELL_CACHE }).then(function (cached) { return cached || fetch(request); })
    );
  }
  // Everything else (the API) goes to the network; the app keeps its own copies in IndexedDB.
});

self.addEventListener("sync", function (event) {
  if (event.tag === "gridmgmt-outbox") {
    event.waitUntil(
      GridQueue.flushAll().then(function (summary) {
        return self.clients.matchAll().then(function (clients) {
          clients.forEach(function (client) { client.postMessage({ type: "outbox-flushed", summary: summary }); });
          // Still waiting (no network yet): reject, so that the browser tries this sync again later.
          if (summary.waiting > 0 && !summary.needLogin) throw new Error("outbox not empty");
        });
      })
    );
  }
});

self.addEventListener("message", function (event) {
  if (event.data && event.data.type === "flush") {
    event.waitUntil(GridQueue.flushAll());
  }
});
