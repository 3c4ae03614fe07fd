// Progressive enhancement only: every page works as plain forms and links without this file.
// A filter form with data-live-url re-renders its recommendations in place when a select changes;
// a look's garments are placed over its photo and light up with their pick cards; an upload's pieces
// are searched by re-posting the shopper's photo (kept in memory) with the piece's box.
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

  // --- Shop the look: garments drawn over a photo (templates/partials/look_figure.html) ------------

  // Each garment's label sits at its box's top-left corner (custom properties: the policy forbids
  // style attributes, not CSSOM).
  function placeSpots(root) {
    root.querySelectorAll(".garment-spot[data-left]").forEach(function (spot) {
      spot.style.setProperty("--left", spot.dataset.left + "%");
      spot.style.setProperty("--top", spot.dataset.top + "%");
    });
  }

  function highlight(number, on) {
    document.querySelectorAll('.garment-shape[data-garment="' + number + '"], .garment-link[data-garment="' + number +
      '"], .card--pick[data-garment="' + number + '"]').forEach(function (el) { el.classList.toggle("is-hot", on); });
  }

  // Hovering or focusing a garment's label, outline or pick card lights up all three.
  function hoverGarments() {
    ["mouseover", "focusin"].forEach(function (type) {
      document.addEventListener(type, function (event) {
        var owner = event.target.closest && event.target.closest("[data-garment]");
        if (owner) highlight(owner.dataset.garment, true);
      });
    });
    ["mouseout", "focusout"].forEach(function (type) {
      document.addEventListener(type, function (event) {
        var owner = event.target.closest && event.target.closest("[data-garment]");
        if (!owner) return;
        var next = event.relatedTarget && event.relatedTarget.closest && event.relatedTarget.closest("[data-garment]");
        if (!next || next.dataset.garment !== owner.dataset.garment) highlight(owner.dataset.garment, false);
      });
    });
    // A click on an outline chooses that garment, as its label does.
    document.addEventListener("click", function (event) {
      var shape = event.target.closest && event.target.closest(".garment-shape");
      if (!shape) return;
      var figure = shape.closest("[data-look]");
      if (!figure || figure.classList.contains("is-drawing")) return;
      var link = figure.querySelector('.garment-link[data-garment="' + shape.dataset.garment + '"]');
      if (link) link.click();
    });
  }

  // --- An upload's pieces: the photo is not stored, so the page keeps the shopper's File in memory
  // and re-posts it with the piece's box (FormData + fetch), replacing only the results.
  var upload = { file: null, whole: null };

  function parseHtml(html) { return new DOMParser().parseFromString(html, "text/html"); }

  function previewBlob() {
    // Fallback when the File is gone (the result page came from a plain form post): the preview itself.
    var img = document.querySelector(".query-preview img");
    if (!img || img.src.indexOf("data:") !== 0) return null;
    var parts = img.src.split(","), bytes = atob(parts[1]), array = new Uint8Array(bytes.length);
    for (var i = 0; i < bytes.length; i++) array[i] = bytes.charCodeAt(i);
    return new File([array], "photo.jpg", { type: "image/jpeg" });
  }

  function postForm(form, data) {
    return fetch(form.action, { method: "POST", body: data, headers: { "X-Requested-With": "fetch" }, credentials: "same-origin" })
      .then(function (response) { return response.text().then(function (html) { return parseHtml(html); }); });
  }

  function rememberWhole() {
    var region = document.getElementById("query-results");
    if (region && region.dataset.answer === "whole") upload.whole = region.cloneNode(true);
    document.querySelectorAll("[data-whole-look]").forEach(function (button) { button.hidden = !upload.whole; });
  }

  function chosen(number) {
    document.querySelectorAll(".garment-shape, .garment-link").forEach(function (el) {
      el.classList.toggle("is-chosen", number !== null && el.dataset.garment === String(number));
    });
  }

  function searchPiece(form) {
    var region = document.getElementById("query-results");
    var data = new FormData(form);
    var typed = form.querySelector("input[type=file]");
    var file = (typed && typed.files[0]) || upload.file || previewBlob();
    if (!region || !file) return false;
    if (form.hasAttribute("data-box-form")) {
      var box = ["box_left", "box_top", "box_right", "box_bottom"].map(function (name) {
        return String(parseFloat(form.elements[name].value) / 100);
      });
      data.set("box", box.join(","));
    }
    data.set("image", file, file.name || "photo.jpg");
    chosen(form.dataset.garment || null);
    region.classList.add("is-loading");
    postForm(form, data).then(function (doc) {
      var answer = doc.getElementById("query-results");
      if (!answer) {
        var problem = doc.querySelector(".error, .unavailable p");
        answer = document.createElement("div");
        answer.id = "query-results";
        answer.className = "query-answer";
        answer.setAttribute("aria-live", "polite");
        var message = document.createElement("p");
        message.className = "error";
        message.setAttribute("role", "alert");
        message.textContent = problem ? problem.textContent.trim() : "Searching this piece failed. Please try again.";
        answer.appendChild(message);
      }
      region.replaceWith(answer);
      rememberWhole();
    }).catch(function () {
      region.classList.remove("is-loading");
      form.submit();
    });
    return true;
  }

  // A street photo's upload is posted by fetch, so its File stays here for the pieces' searches.
  function uploadInPlace(form) {
    var input = form.querySelector("input[type=file]");
    upload.file = input && input.files[0] ? input.files[0] : null;
    var main = document.querySelector("main");
    main.classList.add("is-loading");
    postForm(form, new FormData(form)).then(function (doc) {
      var fresh = doc.querySelector("main");
      if (!fresh) throw new Error("no page");
      main.replaceWith(fresh);
      document.title = doc.title;
      enhance(fresh);
      window.scrollTo(0, 0);
    }).catch(function () { form.submit(); });
  }

  function uploads() {
    document.addEventListener("submit", function (event) {
      var form = event.target;
      if (form.matches("[data-piece-form]")) {
        if (searchPiece(form)) event.preventDefault();
      } else if (form.matches('form.upload[data-upload="snapshot_to_items"]') && window.fetch && window.DOMParser) {
        event.preventDefault();
        uploadInPlace(form);
      }
    });
    document.addEventListener("click", function (event) {
      var back = event.target.closest && event.target.closest("[data-whole-look]");
      var region = document.getElementById("query-results");
      if (!back || !upload.whole || !region) return;
      region.replaceWith(upload.whole.cloneNode(true));
      chosen(null);
      hideDrawn();
    });
  }

  function hideDrawn() {
    document.querySelectorAll(".drawn-box").forEach(function (rect) { rect.classList.remove("is-shown"); });
  }

  // "Draw a box": drag over the photo (pointer events) or type the four percentages, then search.
  function boxDrawing(root) {
    var details = root.querySelector("[data-box-draw]");
    var figure = root.querySelector(".query-preview[data-look]");
    if (!details || !figure) return;
    var form = details.querySelector("[data-box-form]");
    var frame = figure.querySelector(".look-frame");
    var rect = figure.querySelector(".drawn-box");
    var names = ["box_left", "box_top", "box_right", "box_bottom"];
    var start = null;

    details.addEventListener("toggle", function () { figure.classList.toggle("is-drawing", details.open); });

    function point(event) {
      var r = frame.getBoundingClientRect();
      var clamp = function (v) { return Math.min(1, Math.max(0, v)); };
      return [clamp((event.clientX - r.left) / r.width), clamp((event.clientY - r.top) / r.height)];
    }
    function show(box) {
      rect.setAttribute("x", box[0] * 1000);
      rect.setAttribute("y", box[1] * 1000);
      rect.setAttribute("width", (box[2] - box[0]) * 1000);
      rect.setAttribute("height", (box[3] - box[1]) * 1000);
      rect.classList.add("is-shown");
    }
    function between(a, b) {
      return [Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.max(a[0], b[0]), Math.max(a[1], b[1])];
    }
    frame.addEventListener("pointerdown", function (event) {
      if (!details.open) return;
      event.preventDefault();
      frame.setPointerCapture(event.pointerId);
      start = point(event);
      show(between(start, start));
    });
    frame.addEventListener("pointermove", function (event) {
      if (start) show(between(start, point(event)));
    });
    frame.addEventListener("pointerup", function (event) {
      if (!start) return;
      var box = between(start, point(event));
      start = null;
      show(box);
      names.forEach(function (name, i) { form.elements[name].value = (box[i] * 100).toFixed(1); });
      if (box[2] - box[0] >= 0.02 && box[3] - box[1] >= 0.02) form.requestSubmit();
    });
    form.addEventListener("input", function () {
      var box = names.map(function (name) { return parseFloat(form.elements[name].value) / 100; });
      if (box.every(function (v) { return v >= 0 && v <= 1; }) && box[2] > box[0] && box[3] > box[1]) show(box);
    });
  }

  function enhance(root) {
    placeSpots(root);
    boxDrawing(root);
    rememberWhole();
    root.querySelectorAll("form[data-live-url]").forEach(liveFilters);
  }

  document.addEventListener("DOMContentLoaded", function () {
    enhance(document);
    hoverGarments();
    uploads();
    // Browse grids: a changed filter reloads the grid (its Apply button is hidden when JS runs).
    document.querySelectorAll("form.filters:not([data-live-url])").forEach(function (form) {
      form.addEventListener("change", function () {
        Array.from(form.elements).forEach(function (el) { if (el.name && !el.value) el.disabled = true; });
        form.submit();
      });
    });
  });
})();
