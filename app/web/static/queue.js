/* The live queue: htmx polls #queue-live every few seconds. A refresh is skipped while the nurse is
   typing or choosing in a row (so nothing she entered is lost); after each refresh the tab title shows
   the count and the live region announces new items. */
(function () {
  "use strict";
  var live = document.getElementById("queue-live");
  var announcer = document.getElementById("queue-announcer");
  if (!live) { return; }
  var baseTitle = document.body.getAttribute("data-title") || document.title;

  function keys() {
    var summary = live.querySelector("[data-queue-summary]");
    return summary ? (summary.getAttribute("data-keys") || "").split(" ").filter(Boolean) : [];
  }
  function count() {
    var summary = live.querySelector("[data-queue-summary]");
    return summary ? parseInt(summary.getAttribute("data-count") || "0", 10) : 0;
  }
  function setTitle() {
    var n = count();
    document.title = (n > 0 ? "(" + n + ") " : "") + baseTitle;
  }
  function editing() {
    var active = document.activeElement;
    if (active && active !== live && live.contains(active) && active.matches("input, select, textarea")) {
      return true;
    }
    var fields = live.querySelectorAll("textarea, select[name=outcome], select[name=assignee]");
    for (var i = 0; i < fields.length; i++) {
      if (fields[i].value) { return true; }
    }
    return false;
  }
  var before = keys();
  setTitle();
  document.body.addEventListener("htmx:beforeRequest", function (event) {
    if (event.detail.elt === live && editing()) { event.preventDefault(); }
  });
  document.body.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target !== live) { return; }
    var now = keys();
    var fresh = now.filter(function (k) { return before.indexOf(k) === -1; });
    before = now;
    setTitle();
    if (fresh.length && announcer) {
      var rows = fresh.map(function (k) {
        var row = live.querySelector('[data-key="' + k + '"]');
        return row ? row.getAttribute("data-announce") : "";
      }).filter(Boolean);
      var template = announcer.getAttribute("data-new-text") || "New: %s";
      announcer.textContent = template.replace("%s", rows.join("; "));
    }
  });
})();
