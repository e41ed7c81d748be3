// Attribution overlays for the chosen input: a method of the explain table, a target class
// (predicted, true, or one picked in the top-k list), a sign option, drawn on the input with
// the same slice or MIP as the panels.
"use strict";

(function (BV) {
  const make = BV.make;

  class Attribution {
    constructor(app) {
      this.app = app;
      this.attr = null;
      const meta = app.manifest.meta;
      this.method = document.getElementById("method");
      for (const m of meta.methods) {
        const option = make("option", null, this.method, m.cam ? `${m.name} (CAM at ${meta.cam_layer})` : m.name);
        option.value = m.name;
      }
      const names = meta.methods.map((m) => m.name);
      this.method.value = names.includes("grad_cam") ? "grad_cam" : names[0];
      this.target = document.getElementById("target");
      this.sign = document.getElementById("sign");
      this.opacity = document.getElementById("opacity");
      this.view = document.getElementById("attr-view");
      this.canvas = document.getElementById("attr-canvas");
      this.info = document.getElementById("attr-info");
      document.getElementById("show-attr").addEventListener("click", () => this.show());
      this.method.addEventListener("change", () => this.refresh());
      this.target.addEventListener("change", () => this.refresh());
      this.sign.addEventListener("change", () => this.render());
      this.opacity.addEventListener("input", () => this.render());
    }

    setItem(item) {
      const meta = this.app.manifest.meta;
      this.target.textContent = "";
      make("option", null, this.target, "predicted").value = "predicted";
      if (meta.targets.includes("true") && item.meta.label >= 0) {
        make("option", null, this.target, `true (${item.meta.label_name})`).value = "true";
      }
      if (!this.app.source.static) {
        meta.classes.forEach((name, c) => {
          make("option", null, this.target, `class ${name}`).value = String(c);
        });
      }
      this.attr = null;
      this.view.dataset.ready = "0";
      if (!this.view.hidden) this.show();
    }

    pickClass(c) {
      if (this.app.source.static) return;
      this.target.value = String(c);
      this.show();
    }

    refresh() {
      if (!this.view.hidden) this.show();
    }

    async show() {
      if (!this.app.itemBlob) return;
      const id = this.app.itemId;
      this.view.hidden = false;
      this.view.dataset.ready = "0";
      const params = { item: id, method: this.method.value, target: this.target.value };
      const attr = await this.app.load("attribution", params);
      if (id !== this.app.itemId) return;
      this.attr = attr;
      this.render();
      this.view.dataset.ready = "1";
    }

    render() {
      if (!this.attr || !this.app.itemBlob) return;
      const image = this.app.itemBlob.arrays.image;
      const dims = image.shape.slice(0, -1);
      const channels = image.shape[image.shape.length - 1];
      const codes = BV.signedCodes(this.attr, this.sign.value);
      BV.drawOverlay(this.canvas, image, dims, channels, codes, this.app.view, Number(this.opacity.value));
      const m = this.attr.meta;
      const scale = this.sign.value === "default" || !this.attr.arrays.signed ? m.policy_scale : m.signed_scale;
      this.info.textContent =
        `${m.method} for class ${m.target_name}; the method's maps are ` +
        `${m.sign === "absolute" ? "magnitudes (signs summed separately for the other options)" : "signed"}; ` +
        `scale \u00b1${BV.formatNumber(scale)}`;
    }
  }
  BV.Attribution = Attribution;
})(window.BV);
