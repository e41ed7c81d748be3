// The viewer page: loads the manifest, builds the graph and one section per stage, and shows
// every stage's panels for the chosen input. State the tests read: body[data-ready] once
// built, body[data-item] once every stage of that item is shown, section[data-ready] per
// stage, #attr-view[data-ready] once an overlay is drawn.
"use strict";

(function (BV) {
  class App {
    constructor() {
      this.itemId = null;
      this.itemBlob = null;
      this.modal = null;
      this.status = document.getElementById("status");
    }

    setStatus(text, error) {
      this.status.textContent = text;
      this.status.classList.toggle("error", Boolean(error));
    }

    async load(kind, params) {
      try {
        return await this.source.get(kind, params);
      } catch (e) {
        this.setStatus(String(e.message || e), true);
        throw e;
      }
    }

    async init() {
      this.source = BV.makeSource();
      this.manifest = await this.load("manifest", {});
      const meta = this.manifest.meta;
      document.title = `${meta.title}: network viewer`;
      document.getElementById("title").textContent = meta.title;
      document.getElementById("subtitle").textContent =
        `${meta.model}, checkpoint ${meta.step}, ${meta.ndim}D input, ${meta.classes.length} classes` +
        (meta.static ? ", static export" : "");
      this.view = { mode: meta.ndim === 3 ? "slice" : "plane", t: 0.5, boost: false };
      if (meta.ndim !== 3) {
        document.getElementById("mode-box").hidden = true;
        document.getElementById("slice-box").hidden = true;
      }
      const stagesBox = document.getElementById("stages");
      this.stages = meta.stages.map((info) => new BV.StageView(this, info, stagesBox));
      this.graph = document.getElementById("graph");
      BV.drawGraph(this.graph, meta.stages, (name) => this.goTo(name));
      this.picker = new BV.Picker(this);
      this.attribution = new BV.Attribution(this);
      this.bindControls();
      await this.picker.load();
      document.body.dataset.ready = "1";
      this.setStatus("pick an input");
    }

    bindControls() {
      const byId = (id) => document.getElementById(id);
      byId("mode").addEventListener("change", (e) => {
        this.view.mode = e.target.value;
        byId("slice").disabled = this.view.mode !== "slice";
        this.renderAll();
      });
      byId("slice").addEventListener("input", (e) => {
        this.view.t = Number(e.target.value) / 1000;
        this.renderAll();
      });
      byId("boost").addEventListener("change", (e) => {
        this.view.boost = e.target.checked;
        this.renderAll();
      });
      const zoom = byId("zoom");
      const setZoom = () => document.documentElement.style.setProperty("--zoom", `${zoom.value}px`);
      zoom.addEventListener("input", setZoom);
      setZoom();
      byId("modal-close").addEventListener("click", () => this.closeModal());
      byId("modal").addEventListener("click", (e) => {
        if (e.target.id === "modal") this.closeModal();
      });
      document.addEventListener("keydown", (e) => {
        if (e.key === "Escape") this.closeModal();
      });
      this.sliceText();
    }

    goTo(name) {
      const section = document.getElementById(`stage-${name}`);
      if (section) section.scrollIntoView({ behavior: "smooth", block: "start" });
      BV.highlightGraph(this.graph, name);
    }

    async selectItem(id) {
      const started = performance.now();
      this.itemId = id;
      delete document.body.dataset.item;
      this.picker.mark(id);
      document.getElementById("chosen").textContent = `input: ${id}`;
      this.setStatus(`computing ${id} ...`);
      this.stages.forEach((s) => s.clear());
      const item = await this.load("item", { item: id });
      if (id !== this.itemId) return;
      this.itemBlob = item;
      const meta = this.manifest.meta;
      const truth = item.meta.label >= 0 ? `true class: ${item.meta.label_name}` : "noise input";
      document.getElementById("chosen").textContent = `input: ${id} (${truth})`;
      BV.drawTopK(
        document.getElementById("topk"), item.arrays.probs, meta.classes, item.meta.label,
        Math.min(10, meta.classes.length), (c) => this.attribution.pickClass(c),
      );
      this.attribution.setItem(item);
      await Promise.all(
        this.stages.map(async (s) => {
          const blob = await this.load("stage", { item: id, stage: s.info.name });
          if (id === this.itemId) s.setData(blob, id);
        }),
      );
      if (id !== this.itemId) return;
      const ms = Math.round(performance.now() - started);
      document.body.dataset.item = id;
      this.setStatus(`${id}: ${this.stages.length} stages in ${ms} ms`);
    }

    sliceText() {
      const input = this.manifest.meta.stages[0].shape;
      const text = this.manifest.meta.ndim === 3 && this.view.mode === "slice"
        ? `D = ${BV.sliceIndex(this.view.t, input[0])} of ${input[0]}` : "";
      document.getElementById("slice-info").textContent = text;
    }

    renderAll() {
      this.sliceText();
      this.stages.forEach((s) => s.render());
      this.attribution.render();
      this.renderModal();
    }

    enlarge(stage, c) {
      this.modal = { stage: stage, c: c };
      document.getElementById("modal").hidden = false;
      this.renderModal();
    }

    renderModal() {
      if (!this.modal || !this.modal.stage.blob) return;
      const { stage, c } = this.modal;
      const canvas = document.getElementById("modal-canvas");
      const plane = stage.drawChannel(canvas, c);
      const info = stage.info;
      const what = info.kind === "flat" ? `${info.shape[0]} units` : `channel ${c} of ${info.shape[info.shape.length - 1]}`;
      document.getElementById("modal-title").textContent = `${info.name}: ${what}`;
      const m = stage.blob.meta;
      let text = `layer scale \u00b1${BV.formatNumber(m.scale)}`;
      if (plane) {
        let lo = Infinity;
        let hi = -Infinity;
        for (const v of plane.values.subarray(0, plane.empty || plane.values.length)) {
          lo = Math.min(lo, v);
          hi = Math.max(hi, v);
        }
        const f = m.scale / 127;
        text += `; shown ${plane.h}\u00d7${plane.w}, values ${BV.formatNumber(lo * f)} to ${BV.formatNumber(hi * f)}`;
      } else {
        text += "; feature visualisation";
      }
      document.getElementById("modal-info").textContent = text;
    }

    closeModal() {
      this.modal = null;
      document.getElementById("modal").hidden = true;
    }
  }

  window.addEventListener("DOMContentLoaded", () => {
    BV.app = new App();
    BV.app.init().catch((e) => BV.app.setStatus(`could not start: ${e.message || e}`, true));
  });
})(window.BV);
