// Lab pages (docs/hooks/infphys_labs.py): size each lab snapshot's iframe to its content.
//
// A snapshot is marimo's static HTML export of the lab, served by this site next to marimo's
// own frontend (assets/vendor/marimo/), so the frame is same-origin and its height can follow
// what marimo draws: the page scrolls, not the frame. marimo scrolls its app inside a
// full-height element (#App), so the frame is made as tall as that element's content, and grown
// again whenever marimo adds or redraws an output. mkdocs-material's instant navigation swaps
// pages without a reload: frames are looked for again on every emission of document$.
(function () {
  "use strict";

  const MIN_HEIGHT_PX = 480;

  function contentHeight(doc) {
    const app = doc.getElementById("App"); // marimo's scrolling root
    if (app) return app.scrollHeight;
    return doc.body ? doc.body.scrollHeight : 0;
  }

  function watch(frame) {
    if (frame.dataset.fitted) return;
    frame.dataset.fitted = "pending";
    let scheduled = false;

    function fit() {
      scheduled = false;
      let doc = null;
      try {
        doc = frame.contentDocument;
      } catch (err) {
        frame.dataset.fitted = "fixed"; // not same-origin (a file:// preview): keep the CSS height
        return;
      }
      if (!doc || !doc.body) return;
      const h = Math.max(contentHeight(doc), MIN_HEIGHT_PX);
      if (Math.abs(h - frame.getBoundingClientRect().height) > 2) frame.style.height = h + "px";
      frame.dataset.fitted = "true";
    }

    function later() {
      if (scheduled) return;
      scheduled = true;
      window.requestAnimationFrame(fit);
    }

    function start() {
      let doc = null;
      try {
        doc = frame.contentDocument;
      } catch (err) {
        frame.dataset.fitted = "fixed";
        return;
      }
      if (!doc || !doc.body) return;
      const win = frame.contentWindow;
      // Outputs arrive after load (marimo renders them) and grow as charts draw.
      new win.MutationObserver(later).observe(doc.body, {
        childList: true,
        subtree: true,
        attributes: true,
        attributeFilter: ["style", "class"],
      });
      new win.ResizeObserver(later).observe(doc.body);
      later();
    }

    frame.addEventListener("load", start);
    let doc = null;
    try {
      doc = frame.contentDocument;
    } catch (err) {
      doc = null;
    }
    if (doc && doc.readyState === "complete" && doc.URL !== "about:blank") start();
  }

  function all() {
    document.querySelectorAll("iframe.infphys-snapshot__frame").forEach(watch);
  }

  if (typeof window.document$ !== "undefined") {
    window.document$.subscribe(all);
  } else if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", all);
  } else {
    all();
  }
})();
