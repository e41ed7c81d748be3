// The model as a graph, from the model contract alone: the input and the trunk stages in one
// row, left to right, and each branch below the column after its last source, with an edge
// from every source. Nothing here knows a model family.
"use strict";

(function (BV) {
  const SVG = "http://www.w3.org/2000/svg";
  const BOX_W = 118;
  const BOX_H = 46;
  const GAP_X = 34;
  const GAP_Y = 30;

  function el(name, attrs, parent) {
    const node = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (parent) parent.appendChild(node);
    return node;
  }

  BV.shapeText = function (shape) {
    return shape.join("\u00d7");
  };

  // Column and row of every stage: trunk (and the input) in row 0, a branch in the column
  // after the rightmost of its sources, in the first free row below.
  BV.layoutGraph = function (stages) {
    const pos = {};
    const used = {};
    let col = 0;
    for (const s of stages) {
      if (s.role === "branch") continue;
      pos[s.name] = { col: col, row: 0 };
      used[col] = 1;
      col++;
    }
    for (const s of stages) {
      if (s.role !== "branch") continue;
      const c = Math.max(...s.sources.map((src) => (pos[src] ? pos[src].col : 0))) + 1;
      const row = Math.max(1, used[c] || 0);
      used[c] = row + 1;
      pos[s.name] = { col: c, row: row };
    }
    return pos;
  };

  BV.drawGraph = function (svg, stages, onClick) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const pos = BV.layoutGraph(stages);
    const cols = Math.max(...Object.values(pos).map((p) => p.col)) + 1;
    const rows = Math.max(...Object.values(pos).map((p) => p.row)) + 1;
    const width = cols * (BOX_W + GAP_X) + GAP_X;
    const height = rows * (BOX_H + GAP_Y) + GAP_Y;
    svg.setAttribute("width", width);
    svg.setAttribute("height", height);
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    const xy = (name) => ({
      x: GAP_X + pos[name].col * (BOX_W + GAP_X),
      y: GAP_Y / 2 + pos[name].row * (BOX_H + GAP_Y),
    });
    const defs = el("defs", {}, svg);
    const marker = el(
      "marker",
      { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7,
        orient: "auto-start-reverse" },
      defs,
    );
    el("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrowhead" }, marker);
    const edges = el("g", { class: "edges" }, svg);
    for (const s of stages) {
      for (const src of s.sources) {
        if (!pos[src]) continue;
        const a = xy(src);
        const b = xy(s.name);
        const x1 = a.x + BOX_W;
        const y1 = a.y + BOX_H / 2;
        const x2 = b.x;
        const y2 = b.y + BOX_H / 2;
        const mid = (x1 + x2) / 2;
        el(
          "path",
          { d: `M ${x1} ${y1} C ${mid} ${y1}, ${mid} ${y2}, ${x2} ${y2}`, class: "edge",
            "marker-end": "url(#arrow)", "data-from": src, "data-to": s.name },
          edges,
        );
      }
    }
    for (const s of stages) {
      const p = xy(s.name);
      const g = el(
        "g",
        { class: `node ${s.kind} ${s.role}`, transform: `translate(${p.x},${p.y})`,
          "data-stage": s.name, tabindex: 0 },
        svg,
      );
      el("rect", { width: BOX_W, height: BOX_H, rx: 6 }, g);
      el("text", { x: BOX_W / 2, y: 18, class: "name" }, g).textContent = s.name;
      el("text", { x: BOX_W / 2, y: 35, class: "shape" }, g).textContent = BV.shapeText(s.shape);
      el("title", {}, g).textContent = `${s.name} (${s.role}, ${s.kind})`;
      g.addEventListener("click", () => onClick(s.name));
      g.addEventListener("keydown", (e) => {
        if (e.key === "Enter") onClick(s.name);
      });
    }
  };

  BV.highlightGraph = function (svg, name) {
    for (const g of svg.querySelectorAll("g.node")) {
      g.classList.toggle("current", g.getAttribute("data-stage") === name);
    }
  };
})(window.BV);
