// Live updates for the octoqueue dashboard: counts arrive over server-sent events; when they change, the job
// table (on the jobs page) and the job's state (on a job page) are fetched again. No framework, no build step.
(function () {
  "use strict";
  var source = document.body.getAttribute("data-live");
  if (!source || !window.EventSource) { return; }
  var last = null;
  var events = new EventSource(source);
  events.addEventListener("counts", function (event) {
    var counts = JSON.parse(event.data);
    Object.keys(counts.counts).forEach(function (state) {
      document.querySelectorAll('[data-count="' + state + '"]').forEach(function (el) {
        el.textContent = String(counts.counts[state]);
      });
    });
    Object.keys(counts.rates || {}).forEach(function (state) {
      document.querySelectorAll('[data-rate="' + state + '"]').forEach(function (el) {
        el.textContent = counts.rates[state];
      });
    });
    if (counts.paused) {
      var paused = counts.paused.queue ? ["the whole queue"] : [];
      Object.keys(counts.paused.labels).sort().forEach(function (name) { paused.push("label " + name); });
      document.querySelectorAll("[data-paused]").forEach(function (el) {
        el.textContent = paused.length ? "paused: " + paused.join(", ") : "running";
      });
    }
    var key = JSON.stringify(counts.counts);
    if (last !== null && key !== last) { refresh(); }
    last = key;
  });

  function refresh() {
    var table = document.getElementById("job-table");
    var state = document.querySelector("[data-job-state]");
    if (!table && !state) { return; }
    fetch(window.location.href, { headers: { "X-Partial": table ? "table" : "state" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html === null) { return; }
        if (table) { table.innerHTML = html; } else { state.textContent = html; }
        document.body.setAttribute("data-refreshed", String(Date.now()));
      });
  }
})();
