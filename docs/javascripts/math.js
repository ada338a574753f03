// The pages' formulas (pymdownx.arithmatex writes them as \( \) and \[ \]) drawn by KaTeX 0.19.1, which the site
// carries in javascripts/katex/ (npm's katex, MIT; LICENSE there), so that they render opened from disk, offline.
document$.subscribe(({ body }) => {
  renderMathInElement(body, {
    delimiters: [
      { left: "\\(", right: "\\)", display: false },
      { left: "\\[", right: "\\]", display: true },
    ],
    throwOnError: false,
  });
});
