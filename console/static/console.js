// Poll server-rendered fragments and swap them in: elements with data-poll="URL".
// Polling stops while a form inside the fragment has focus, so typing is not lost.
(function () {
  function poll(el) {
    var url = el.getAttribute("data-poll");
    var every = parseInt(el.getAttribute("data-interval") || "1000", 10);
    function tick() {
      if (el.contains(document.activeElement) && document.activeElement.tagName !== "BODY") {
        return setTimeout(tick, every);
      }
      fetch(url, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) { if (html !== null) { el.innerHTML = html; } })
        .catch(function () {})
        .finally(function () { setTimeout(tick, every); });
    }
    setTimeout(tick, every);
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-poll]").forEach(poll);
  });
})();
