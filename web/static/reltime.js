// Trawl dashboard: times people can read. Hand-written; no build step, no inline script (CSP).
//
// The server renders every moment as <time datetime="RFC 3339" data-rel> with a relative text
// ("1m25s ago", "in 3s") and every running duration as <time data-since="RFC 3339">
// (layout.templ). This script keeps those texts current every second, with the same wording as
// the server (web/view.go: timeRef.rel and span), and sets each moment's title to its absolute
// time in ISO 8601 in the browser's time zone, shown on hover. Parts replaced by live updates
// are handled at once (htmx:afterSwap).
(function () {
  "use strict";

  // The server's clock minus this browser's, from <meta name="server-time">, so that a
  // browser whose clock is off does not say "in 3s" of what is past. A page restored from the
  // back/forward cache has an old server time: it then trusts the browser's clock.
  var skew = 0;
  var meta = document.querySelector('meta[name="server-time"]');
  if (meta) {
    var at = Date.parse(meta.getAttribute("content"));
    if (!isNaN(at)) skew = at - Date.now();
  }
  window.addEventListener("pageshow", function (ev) {
    if (ev.persisted) skew = 0;
  });

  function pad(n) {
    return (n < 10 ? "0" : "") + n;
  }

  // span mirrors span in web/view.go: "45s", "1m25s", "2h05m", "3d04h".
  function span(ms) {
    var s = Math.floor(Math.max(ms, 0) / 1000);
    if (s < 60) return s + "s";
    if (s < 3600) return Math.floor(s / 60) + "m" + pad(s % 60) + "s";
    if (s < 48 * 3600) return Math.floor(s / 3600) + "h" + pad(Math.floor(s / 60) % 60) + "m";
    return Math.floor(s / 86400) + "d" + pad(Math.floor(s / 3600) % 24) + "h";
  }

  // iso is t in ISO 8601 in the browser's time zone, with its offset: 2026-12-07T20:05:10+01:00.
  function iso(t) {
    var d = new Date(t);
    var off = -d.getTimezoneOffset();
    var sign = off < 0 ? "-" : "+";
    off = Math.abs(off);
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) +
      "T" + pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds()) +
      sign + pad(Math.floor(off / 60)) + ":" + pad(off % 60);
  }

  // rel mirrors timeRef.rel in web/view.go; two days or more away it gives the local date and
  // time (the server, which does not know the browser's zone, gives them in UTC).
  function rel(t, now) {
    var d = t - now;
    var a = Math.abs(d);
    if (a < 1000) return "now";
    if (a >= 48 * 3600 * 1000) return iso(t).slice(0, 16).replace("T", " ");
    return d < 0 ? span(a) + " ago" : "in " + span(a);
  }

  function update() {
    var now = Date.now() + skew;
    var els = document.querySelectorAll("time[data-rel]");
    var i, el, t, s;
    for (i = 0; i < els.length; i++) {
      el = els[i];
      t = Date.parse(el.getAttribute("datetime"));
      if (isNaN(t)) continue;
      s = rel(t, now);
      if (el.textContent !== s) el.textContent = s;
      s = iso(t);
      if (el.title !== s) el.title = s;
    }
    els = document.querySelectorAll("[data-since]");
    for (i = 0; i < els.length; i++) {
      el = els[i];
      t = Date.parse(el.getAttribute("data-since"));
      if (isNaN(t)) continue;
      s = span(now - t);
      if (el.textContent !== s) el.textContent = s;
    }
  }

  update();
  window.setInterval(update, 1000);
  // A live update replaces a part in the same task as htmx:afterSwap: its times read right
  // before anything else sees them.
  document.addEventListener("htmx:afterSwap", update);
  document.addEventListener("htmx:load", update);
})();
