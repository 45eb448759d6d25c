// labq console: the only script. A part of a page marked data-refresh="URL" is re-read every
// few seconds (live run progress) and replaced, without a library. docs/architecture.md §7.8.
(function () {
  "use strict";
  function refresh(element) {
    var url = element.getAttribute("data-refresh");
    var every = parseInt(element.getAttribute("data-every") || "3000", 10);
    function tick() {
      fetch(url, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (html !== null && html !== element.innerHTML) { element.innerHTML = html; }
          window.setTimeout(tick, every);
        })
        .catch(function () { window.setTimeout(tick, every * 2); });
    }
    window.setTimeout(tick, every);
  }
  document.addEventListener("DOMContentLoaded", function () {
    var parts = document.querySelectorAll("[data-refresh]");
    for (var i = 0; i < parts.length; i++) { refresh(parts[i]); }
  });
})();
