/* Maps of the command-center screens (django-leaflet calls these with the map).
   Without base-map tiles (GRIDMGMT_BASE_MAP=none) the grid outlines are the only reference. */
(function () {
  "use strict";

  function data(id) {
    var node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  window.commandCaseMap = function (map) {
    var info = data("case-map-data");
    if (!info) { return; }
    var grid = L.geoJSON(info.grid, {style: {color: "#0b3d91", weight: 2, fillOpacity: 0.06}}).addTo(map);
    var point = L.latLng(info.point[1], info.point[0]);
    L.circleMarker(point, {radius: 8, color: "#fff", weight: 2, fillColor: "#e02424", fillOpacity: 1})
      .bindTooltip(info.grid.properties.name).addTo(map);
    var bounds = grid.getBounds();
    if (bounds.isValid()) { map.fitBounds(bounds.extend(point), {padding: [20, 20], maxZoom: 18}); }
    else { map.setView(point, 17); }
  };

  window.commandRegisterMap = function (map) {
    var outline = data("register-outline");
    var lon = document.getElementById("id_longitude");
    var lat = document.getElementById("id_latitude");
    var layer = L.geoJSON(outline, {
      style: {color: "#52606d", weight: 1, fillOpacity: 0.04},
      onEachFeature: function (feature, shape) { shape.bindTooltip(feature.properties.name, {sticky: true}); }
    }).addTo(map);
    var bounds = layer.getBounds();
    if (bounds.isValid()) { map.fitBounds(bounds, {padding: [10, 10]}); }
    var marker = null;
    function place(latlng, pan) {
      if (marker) { marker.setLatLng(latlng); }
      else { marker = L.circleMarker(latlng, {radius: 8, color: "#fff", weight: 2, fillColor: "#e02424", fillOpacity: 1}).addTo(map); }
      if (pan) { map.panTo(latlng); }
    }
    function fromInputs() {
      var x = parseFloat(lon.value), y = parseFloat(lat.value);
      if (isFinite(x) && isFinite(y)) { place(L.latLng(y, x), true); }
    }
    map.on("click", function (event) {
      lon.value = event.latlng.lng.toFixed(6);
      lat.value = event.latlng.lat.toFixed(6);
      place(event.latlng, false);
    });
    lon.addEventListener("change", fromInputs);
    lat.addEventListener("change", fromInputs);
    fromInputs();
  };
})();
