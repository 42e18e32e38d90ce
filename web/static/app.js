// Trawl dashboard: small progressive enhancements. No inline scripts anywhere (see the CSP).
(function () {
  "use strict";
  // Show htmx request failures (htmx does not swap 4xx/5xx by default) instead of doing nothing.
  document.addEventListener("htmx:beforeSwap", function (ev) {
    var xhr = ev.detail.xhr;
    if (xhr && xhr.status >= 400) {
      ev.detail.shouldSwap = true;
      ev.detail.isError = false;
    }
  });
  document.addEventListener("htmx:sendError", function (ev) {
    var t = ev.detail.target;
    if (t) {
      var p = document.createElement("p");
      p.className = "error";
      p.setAttribute("role", "alert");
      p.textContent = "The dashboard did not answer. Check your connection and try again.";
      t.appendChild(p);
    }
  });
  // Keyboard: "/" focuses the search box when there is one, or opens search.
  document.addEventListener("keydown", function (ev) {
    if (ev.key !== "/" || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    var tag = (document.activeElement && document.activeElement.tagName) || "";
    if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT") return;
    ev.preventDefault();
    var q = document.getElementById("q");
    if (q) { q.focus(); q.select(); } else { window.location.href = "/search"; }
  });
})();
