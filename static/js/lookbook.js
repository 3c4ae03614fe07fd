// Progressive enhancement only: every page works as plain forms and links without this file.
// A filter form with data-live-url re-renders its recommendations in place when a select changes.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  function liveFilters(form) {
    var target = document.getElementById(form.dataset.liveTarget);
    if (!target) return;
    var pending = null;
    form.addEventListener("change", function () {
      var query = new URLSearchParams(new FormData(form));
      Array.from(query.keys()).forEach(function (key) { if (!query.get(key)) query.delete(key); });
      var qs = query.toString();
      if (pending) pending.abort();
      pending = new AbortController();
      target.classList.add("is-loading");
      fetch(form.dataset.liveUrl + (qs ? "?" + qs : ""), {
        headers: { "X-Requested-With": "fetch" },
        signal: pending.signal,
      })
        .then(function (response) {
          if (!response.ok) throw new Error("HTTP " + response.status);
          return response.text();
        })
        .then(function (html) {
          target.innerHTML = html;
          target.classList.remove("is-loading");
          history.replaceState(null, "", window.location.pathname + (qs ? "?" + qs : ""));
        })
        .catch(function (error) {
          if (error.name === "AbortError") return;
          form.submit(); // fall back to the plain page reload
        });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form[data-live-url]").forEach(liveFilters);
    // Browse grids: a changed filter reloads the grid (its Apply button is hidden when JS runs).
    document.querySelectorAll("form.filters:not([data-live-url])").forEach(function (form) {
      form.addEventListener("change", function () {
        Array.from(form.elements).forEach(function (el) { if (el.name && !el.value) el.disabled = true; });
        form.submit();
      });
    });
  });
})();
