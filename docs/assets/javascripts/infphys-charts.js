// Draws the plotly charts that infphys computed at build time (docs/hooks/infphys_site.py).
//
// Each chart is a <div class="infphys-chart" data-figure="{data, layout, frames}"> holding the
// figure's JSON (an attribute, because instant navigation would run a JSON <script> as code).
// plotly.js is served from this site (assets/vendor/plotly/plotly.min.js, written at build time
// from the plotly wheel) and loaded only on pages that have a chart. Nothing comes from a CDN.
//
// The figure's own sliders and dropdowns work as in any plotly page; colours follow the site's
// light/dark palette and change with it. mkdocs-material's instant navigation swaps the page
// without reloading it, so charts are drawn on every emission of document$.
(function () {
  "use strict";

  const self = document.currentScript;
  const assets = self ? self.src.replace(/javascripts\/infphys-charts\.js(\?.*)?$/, "") : null;
  let plotlyLoading = null;

  function loadPlotly() {
    if (window.Plotly) return Promise.resolve(window.Plotly);
    if (!plotlyLoading) {
      plotlyLoading = new Promise(function (resolve, reject) {
        if (!assets) {
          reject(new Error("infphys-charts: cannot locate the site's assets folder"));
          return;
        }
        const s = document.createElement("script");
        s.src = assets + "vendor/plotly/plotly.min.js";
        s.onload = function () { resolve(window.Plotly); };
        s.onerror = function () { reject(new Error("infphys-charts: failed to load " + s.src)); };
        document.head.appendChild(s);
      });
    }
    return plotlyLoading;
  }

  function css(name, fallback) {
    const v = getComputedStyle(document.body).getPropertyValue(name).trim();
    return v || fallback;
  }

  function theme() {
    return {
      fg: css("--md-typeset-color", "#333"),
      muted: css("--md-default-fg-color--light", "#777"),
      grid: css("--md-default-fg-color--lightest", "rgba(0,0,0,0.07)"),
      bg: css("--md-default-bg-color", "#fff"),
      font: getComputedStyle(document.body).fontFamily,
    };
  }

  // Flat plotly paths ("xaxis.gridcolor", "updatemenus[0].bgcolor") that restyle a figure for
  // the current palette; the figure's data and its own colours are left alone.
  function themeUpdates(layout) {
    const t = theme();
    const u = {
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "rgba(0,0,0,0)",
      "font.color": t.fg,
      "font.family": t.font,
      "legend.bgcolor": "rgba(0,0,0,0)",
      "title.font.color": t.fg,
    };
    const axes = new Set(["xaxis", "yaxis"]);
    Object.keys(layout || {}).forEach(function (k) {
      if (/^[xy]axis\d*$/.test(k)) axes.add(k);
    });
    axes.forEach(function (a) {
      u[a + ".gridcolor"] = t.grid;
      u[a + ".zerolinecolor"] = t.grid;
      u[a + ".linecolor"] = t.muted;
      u[a + ".tickcolor"] = t.muted;
    });
    ((layout && layout.updatemenus) || []).forEach(function (_, i) {
      u["updatemenus[" + i + "].bgcolor"] = t.bg;
      u["updatemenus[" + i + "].bordercolor"] = t.muted;
      u["updatemenus[" + i + "].font.color"] = t.fg;
    });
    ((layout && layout.sliders) || []).forEach(function (_, i) {
      u["sliders[" + i + "].font.color"] = t.fg;
      u["sliders[" + i + "].bordercolor"] = t.muted;
      u["sliders[" + i + "].tickcolor"] = t.muted;
      u["sliders[" + i + "].currentvalue.font.color"] = t.fg;
    });
    return u;
  }

  function setPath(obj, path, value) {
    const parts = path.replace(/\[(\d+)\]/g, ".$1").split(".");
    let o = obj;
    for (let i = 0; i < parts.length - 1; i++) {
      if (o[parts[i]] == null || typeof o[parts[i]] !== "object") o[parts[i]] = {};
      o = o[parts[i]];
    }
    o[parts[parts.length - 1]] = value;
  }

  function draw(Plotly, div) {
    const fig = JSON.parse(div.dataset.figure);
    const layout = fig.layout || {};
    delete layout.width;
    layout.autosize = true;
    const updates = themeUpdates(layout);
    Object.keys(updates).forEach(function (k) { setPath(layout, k, updates[k]); });
    div.dataset.rendered = "pending";
    return Plotly.newPlot(div, {
      data: fig.data || [],
      layout: layout,
      frames: fig.frames || [],
      config: { responsive: true, displaylogo: false, scrollZoom: false },
    }).then(function () {
      div.dataset.rendered = "true";
    });
  }

  function renderAll() {
    const divs = Array.prototype.filter.call(
      document.querySelectorAll("div.infphys-chart[data-figure]"),
      function (d) { return !d.dataset.rendered; }
    );
    if (!divs.length) return Promise.resolve();
    return loadPlotly().then(function (Plotly) {
      return Promise.all(divs.map(function (div) {
        return Promise.resolve().then(function () { return draw(Plotly, div); }).catch(function (err) {
          div.dataset.rendered = "error";
          div.textContent = "This chart could not be drawn: " + err.message;
          console.error(err);
        });
      }));
    }).catch(function (err) { console.error(err); });
  }

  function retheme() {
    if (!window.Plotly) return;
    document.querySelectorAll("div.infphys-chart[data-rendered='true']").forEach(function (div) {
      window.Plotly.relayout(div, themeUpdates(div.layout));
    });
  }

  new MutationObserver(retheme).observe(document.body, {
    attributes: true,
    attributeFilter: ["data-md-color-scheme", "data-md-color-primary"],
  });

  window.infphysCharts = { render: renderAll };
  if (typeof window.document$ !== "undefined") {
    window.document$.subscribe(function () { renderAll(); });
  } else if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", renderAll);
  } else {
    renderAll();
  }
})();
