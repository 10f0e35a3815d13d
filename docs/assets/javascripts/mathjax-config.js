// MathJax 3 configuration for the vendored tex-svg.js (docs/assets/vendor/mathjax/).
// pymdownx.arithmatex (generic mode) wraps maths in \( … \) and \[ … \] inside
// elements of class "arithmatex"; MathJax typesets only those.
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"]],
    displayMath: [["\\[", "\\]"]],
    processEscapes: true,
    processEnvironments: true,
  },
  options: {
    ignoreHtmlClass: ".*|",
    processHtmlClass: "arithmatex",
  },
  // "local": each formula carries its own glyphs, so nothing breaks when instant navigation
  // replaces the page body (a "global" cache would be swapped out with it).
  svg: { fontCache: "local" },
};

// mkdocs-material's instant navigation swaps the page body without a reload: typeset the new
// body on every page change. Until tex-svg.js has loaded, window.MathJax is only this
// configuration (no startup): MathJax then typesets the page itself when it starts.
document$.subscribe(() => {
  const mj = window.MathJax;
  if (!mj || !mj.startup || !mj.startup.promise) return;
  mj.startup.promise = mj.startup.promise.then(() => {
    mj.typesetClear();
    mj.texReset();
    return mj.typesetPromise();
  });
});
