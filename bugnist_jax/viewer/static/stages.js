// One section per stage: its facts (shape, receptive field, parameters), weight and
// activation histograms, and its channels as panels for the chosen input; a click on a panel
// enlarges it. Export: the panels as shown as a PNG grid, and (3D) a TIFF of the real values.
"use strict";

(function (BV) {
  function make(tag, cls, parent, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }
  BV.make = make;

  function rfText(info) {
    if (info.role === "input") return "receptive field: 1 voxel";
    if (!info.rf) return "receptive field: the whole input";
    const jump = BV.shapeText(info.rf.jump);
    return `receptive field ${BV.shapeText(info.rf.size)} (jump ${jump})`;
  }

  class StageView {
    constructor(app, info, parent) {
      this.app = app;
      this.info = info;
      this.blob = null;
      this.featurevis = null;
      this.section = make("section", `stage ${info.kind}`, parent);
      this.section.id = `stage-${info.name}`;
      this.section.dataset.stage = info.name;
      const head = make("header", null, this.section);
      make("h3", null, head, info.name);
      make("span", "tag", head, info.role === "branch" ? `branch of ${info.sources.join(", ")}` : info.role);
      make("span", "fact", head, BV.shapeText(info.shape));
      make("span", "fact rf", head, rfText(info));
      make("span", "fact", head, `${info.params.toLocaleString()} parameters`);
      const body = make("div", "stage-body", this.section);
      const charts = make("div", "charts", body);
      const weights = app.manifest.arrays[`w_${info.name}_counts`];
      if (weights) {
        const fig = make("figure", "hist weights", charts);
        this.weightCanvas = make("canvas", null, fig);
        make("figcaption", null, fig, "weights");
        BV.drawHistogram(this.weightCanvas, weights, app.manifest.arrays[`w_${info.name}_edges`], "#9ab");
      }
      const fig = make("figure", "hist activations", charts);
      this.actCanvas = make("canvas", null, fig);
      make("figcaption", null, fig, "activations");
      const tools = make("div", "tools", charts);
      this.scaleText = make("div", "scale", tools);
      const png = make("button", "export-png", tools, "PNG grid");
      png.title = "download the panels as shown";
      png.addEventListener("click", () => this.exportPng());
      if (app.manifest.meta.tiff && info.kind === "spatial" && info.shape.length === 4) {
        this.tiffLink = make("a", "export-tiff button", tools, "TIFF");
        this.tiffLink.title = "ImageJ hyperstack of the real values";
        this.tiffLink.setAttribute("download", "");
      }
      if (app.manifest.meta.featurevis.includes(info.name)) {
        const label = make("label", "fv-toggle", tools);
        this.fvBox = make("input", null, label);
        this.fvBox.type = "checkbox";
        label.append(" feature visualisations");
        this.fvBox.addEventListener("change", () => this.toggleFeatureVis());
      }
      this.panels = make("div", "panels", body);
      this.renders = 0;
    }

    clear() {
      this.blob = null;
      this.section.dataset.ready = "0";
      this.panels.textContent = "";
      this.canvases = [];
    }

    setData(blob, item) {
      this.blob = blob;
      const meta = blob.meta;
      BV.drawHistogram(this.actCanvas, blob.arrays.hist_counts, blob.arrays.hist_edges, "#d66");
      this.scaleText.textContent =
        `scale \u00b1${BV.formatNumber(meta.scale)} (min ${BV.formatNumber(meta.min)}, ` +
        `max ${BV.formatNumber(meta.max)})`;
      if (this.tiffLink) this.tiffLink.href = this.app.source.tiffUrl(item, this.info.name);
      const n = this.info.kind === "spatial" ? this.info.shape[this.info.shape.length - 1] : 1;
      this.panels.textContent = "";
      this.canvases = [];
      for (let c = 0; c < n; c++) {
        const canvas = make("canvas", this.info.kind === "flat" ? "panel flat" : "panel", this.panels);
        canvas.dataset.channel = c;
        canvas.title = this.info.kind === "flat" ? `${this.info.shape[0]} units` : `channel ${c}`;
        canvas.addEventListener("click", () => this.app.enlarge(this, c));
        this.canvases.push(canvas);
      }
      this.render();
      this.section.dataset.ready = "1";
    }

    featureImage(c) {
      if (!this.featurevis || !this.fvBox || !this.fvBox.checked) return -1;
      return Array.from(this.featurevis.arrays.channels).indexOf(c);
    }

    drawChannel(canvas, c) {
      const k = this.featureImage(c);
      if (k >= 0) {
        const images = this.featurevis.arrays.images;
        const dims = images.shape.slice(1, -1);
        const ch = images.shape[images.shape.length - 1];
        const size = dims.reduce((a, b) => a * b, 1) * ch;
        const one = images.subarray(k * size, (k + 1) * size);
        BV.drawImage(canvas, one, dims, ch, this.app.view);
        canvas.classList.add("fv");
        return null;
      }
      canvas.classList.remove("fv");
      return BV.drawCodes(canvas, this.blob.arrays.panels, c, this.app.view, this.app.view.boost);
    }

    render() {
      if (!this.blob) return;
      this.canvases.forEach((canvas, c) => this.drawChannel(canvas, c));
      this.renders++;
      this.section.dataset.renders = this.renders;
    }

    async toggleFeatureVis() {
      if (this.fvBox.checked && !this.featurevis) {
        this.featurevis = await this.app.load("featurevis", { stage: this.info.name });
      }
      this.render();
    }

    // The panels as shown, one grid image; small maps are enlarged (nearest neighbour).
    exportPng() {
      if (!this.blob || !this.canvases.length) return;
      const first = this.canvases[0];
      const scale = Math.max(1, Math.floor(64 / Math.max(first.width, first.height)));
      const w = first.width * scale;
      const h = first.height * scale;
      const cols = Math.ceil(Math.sqrt(this.canvases.length));
      const rows = Math.ceil(this.canvases.length / cols);
      const grid = document.createElement("canvas");
      grid.width = cols * (w + 2) + 2;
      grid.height = rows * (h + 2) + 2;
      const ctx = grid.getContext("2d");
      ctx.fillStyle = "#444";
      ctx.fillRect(0, 0, grid.width, grid.height);
      ctx.imageSmoothingEnabled = false;
      this.canvases.forEach((canvas, i) => {
        ctx.drawImage(canvas, 2 + (i % cols) * (w + 2), 2 + Math.floor(i / cols) * (h + 2), w, h);
      });
      grid.toBlob((png) => {
        const a = document.createElement("a");
        a.href = URL.createObjectURL(png);
        a.download = `${this.app.itemId.replace(":", "_")}_${this.info.name}.png`;
        document.body.appendChild(a);
        a.click();
        a.remove();
        setTimeout(() => URL.revokeObjectURL(a.href), 10000);
      }, "image/png");
    }
  }
  BV.StageView = StageView;
})(window.BV);
