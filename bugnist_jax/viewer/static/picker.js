// The input picker: one page of a split's items as thumbnails with their true and predicted
// class (green frame: right, red: wrong), and a noise input with a seed.
"use strict";

(function (BV) {
  const make = BV.make;

  class Picker {
    constructor(app) {
      this.app = app;
      this.page = 0;
      this.split = document.getElementById("split");
      this.thumbs = document.getElementById("thumbs");
      const splits = app.manifest.meta.splits;
      for (const [name, n] of Object.entries(splits)) {
        const option = make("option", null, this.split, `${name} (${n})`);
        option.value = name;
      }
      this.split.value = "test" in splits ? "test" : Object.keys(splits)[0];
      this.split.addEventListener("change", () => {
        this.page = 0;
        this.load();
      });
      document.getElementById("prev").addEventListener("click", () => this.turn(-1));
      document.getElementById("next").addEventListener("click", () => this.turn(1));
      const noise = document.getElementById("noise-row");
      if (app.source.static) {
        noise.hidden = true;
      } else {
        document.getElementById("noise").addEventListener("click", () => {
          const seed = Math.max(0, Math.floor(Number(document.getElementById("seed").value) || 0));
          app.selectItem(`noise:${seed}`);
        });
      }
    }

    pages() {
      const n = this.app.manifest.meta.splits[this.split.value];
      return Math.max(1, Math.ceil(n / this.app.manifest.meta.page_size));
    }

    turn(step) {
      const page = this.page + step;
      if (page < 0 || page >= this.pages()) return;
      this.page = page;
      this.load();
    }

    async load() {
      const blob = await this.app.load("items", { split: this.split.value, page: this.page });
      document.getElementById("pageinfo").textContent = `page ${this.page + 1} of ${this.pages()}`;
      this.thumbs.textContent = "";
      const { thumbs, labels, predictions, confidence } = blob.arrays;
      const [n, h, w, c] = thumbs.shape;
      const classes = this.app.manifest.meta.classes;
      blob.meta.ids.forEach((id, k) => {
        const label = labels[k];
        const pred = predictions[k];
        const right = label < 0 ? "" : label === pred ? " right" : " wrong";
        const fig = make("figure", `thumb${right}`, this.thumbs);
        fig.dataset.item = id;
        const canvas = make("canvas", null, fig);
        const size = h * w * c;
        BV.drawImage(canvas, thumbs.subarray(k * size, (k + 1) * size), [h, w], c, {});
        const caption = make("figcaption", null, fig);
        make("span", "id", caption, id);
        const truth = label < 0 ? "noise" : classes[label];
        make("span", null, caption, `${truth} \u2192 ${classes[pred]} ${(100 * confidence[k]).toFixed(0)}%`);
        fig.title = `${id}: true ${truth}, predicted ${classes[pred]}`;
        fig.addEventListener("click", () => this.app.selectItem(id));
      });
      this.mark(this.app.itemId);
      return n;
    }

    mark(id) {
      for (const fig of this.thumbs.querySelectorAll("figure")) {
        fig.classList.toggle("chosen", fig.dataset.item === id);
      }
    }
  }
  BV.Picker = Picker;
})(window.BV);
