// Small charts: 16-bin histograms (weights, activations) and the top-k class probabilities.
"use strict";

(function (BV) {
  BV.formatNumber = function (v) {
    if (v === 0) return "0";
    const a = Math.abs(v);
    return a >= 1e4 || a < 1e-3 ? v.toExponential(2) : v.toPrecision(3);
  };

  // Bars of `counts` over `edges` on a canvas, heights on a log scale (ReLU outputs put most
  // values in the first bin); the range under it.
  BV.drawHistogram = function (canvas, counts, edges, colour) {
    const w = 180;
    const h = 70;
    canvas.width = w;
    canvas.height = h;
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, w, h);
    const top = Math.log1p(Math.max(...counts, 1));
    const bar = w / counts.length;
    ctx.fillStyle = colour;
    for (let i = 0; i < counts.length; i++) {
      const bh = (Math.log1p(counts[i]) / top) * (h - 14);
      ctx.fillRect(i * bar + 1, h - 12 - bh, bar - 2, bh);
    }
    ctx.fillStyle = "#bbb";
    ctx.font = "10px sans-serif";
    ctx.textAlign = "left";
    ctx.fillText(BV.formatNumber(edges[0]), 1, h - 1);
    ctx.textAlign = "right";
    ctx.fillText(BV.formatNumber(edges[edges.length - 1]), w - 1, h - 1);
    const total = counts.reduce((a, b) => a + b, 0);
    canvas.title = `${total} values in 16 bins, log counts; bin counts: ${Array.from(counts).join(" ")}`;
  };

  // The k most probable classes as rows of bars; `onPick(class)` when a row is clicked.
  BV.drawTopK = function (box, probs, classes, label, k, onPick) {
    box.textContent = "";
    const order = Array.from(probs.keys()).sort((a, b) => probs[b] - probs[a]).slice(0, k);
    for (const c of order) {
      const row = document.createElement("div");
      row.className = "topk-row" + (c === label ? " true-class" : "");
      row.dataset.cls = c;
      row.title = "explain this class";
      const name = document.createElement("span");
      name.className = "cls";
      name.textContent = classes[c];
      const bar = document.createElement("span");
      bar.className = "bar";
      const fill = document.createElement("span");
      fill.style.width = `${(100 * probs[c]).toFixed(1)}%`;
      bar.appendChild(fill);
      const pct = document.createElement("span");
      pct.className = "pct";
      pct.textContent = `${(100 * probs[c]).toFixed(1)}%`;
      row.append(name, bar, pct);
      row.addEventListener("click", () => onPick(c));
      box.appendChild(row);
    }
  };
})(window.BV);
