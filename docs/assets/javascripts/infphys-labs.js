// Lab pages (docs/hooks/infphys_labs.py): size each lab snapshot's iframe to its content.
//
// A snapshot is marimo's static HTML export of the lab, served by this site next to marimo's
// own frontend (assets/vendor/marimo/), so the frame is same-origin and its height can follow
// what marimo draws: the page scrolls, not the frame. marimo renders outputs after load and
// charts resize as plotly draws them, so the height is tracked with a ResizeObserver.
// mkdocs-material's instant navigation swaps pages without a reload: frames are found again on
// every emission of document$.
(function () {
  "use strict";

  const MIN_HEIGHT_PX = 480;

  function contentHeight(frame) {
    let doc = null;
    try {
      doc = frame.contentDocument;
    } catch (err) {
      return 0; // not same-origin (a file:// preview): keep the CSS height
    }
    if (!doc || !doc.body) return 0;
    // marimo's app root is the tallest block; body and html follow it.
    const root = doc.getElementById("root") || doc.body;
    return Math.max(root.scrollHeight, doc.body.scrollHeight, doc.documentElement.scrollHeight);
  }

  function fit(frame) {
    const h = contentHeight(frame);
    if (h > 0) frame.style.height = Math.max(h, MIN_HEIGHT_PX) + "px";
  }

  function watch(frame) {
    if (frame.dataset.fitted) return;
    frame.dataset.fitted = "pending";
    const start = function () {
      fit(frame);
      try {
        const win = frame.contentWindow;
        const observer = new win.ResizeObserver(function () { fit(frame); });
        observer.observe(frame.contentDocument.body);
        const root = frame.contentDocument.getElementById("root");
        if (root) observer.observe(root);
        frame.dataset.fitted = "true";
      } catch (err) {
        frame.dataset.fitted = "fixed"; // keep the CSS height
      }
    };
    frame.addEventListener("load", start);
    const doc = frame.contentDocument;
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
