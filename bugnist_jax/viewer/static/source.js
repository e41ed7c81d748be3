// Where the page's data comes from: the server (`api/<kind>?<params>`) or, in a static export
// opened from disk, scripts `data/b/<key>.js` that call BV.deliver(key, base64) (a page on
// file:// may load scripts but not fetch files). Both give decoded blobs.
"use strict";

(function (BV) {
  // Request kind -> parameters in order (bugnist_jax/viewer/data.py KINDS).
  BV.KINDS = {
    manifest: [],
    items: ["split", "page"],
    item: ["item"],
    stage: ["item", "stage"],
    attribution: ["item", "method", "target"],
    featurevis: ["stage"],
    tiff: ["item", "stage"],
  };

  // The file name of a request in a static export (data.static_key in Python).
  BV.staticKey = function (kind, values) {
    return [kind].concat(values.map((v) => String(v).replace(/[^A-Za-z0-9_.-]/g, "-"))).join("__");
  };

  function values(kind, params) {
    return BV.KINDS[kind].map((name) => {
      if (params[name] === undefined) throw new Error(`${kind}: missing ${name}`);
      return String(params[name]);
    });
  }

  class ServerSource {
    constructor() {
      this.static = false;
    }
    query(kind, params) {
      const vals = values(kind, params);
      return new URLSearchParams(BV.KINDS[kind].map((name, i) => [name, vals[i]])).toString();
    }
    async get(kind, params) {
      const response = await fetch(`api/${kind}?${this.query(kind, params)}`);
      if (!response.ok) {
        let message = response.statusText;
        try {
          message = (await response.json()).error;
        } catch (e) {
          /* not JSON: keep the status text */
        }
        throw new Error(`${kind}: ${message}`);
      }
      return BV.decodeBlob(await response.arrayBuffer());
    }
    tiffUrl(item, stage) {
      return `api/tiff?${this.query("tiff", { item: item, stage: stage })}`;
    }
  }

  class StaticSource {
    constructor() {
      this.static = true;
      this.pending = {};
      this.cache = {};
      BV.deliver = (key, text) => {
        const waiting = this.pending[key];
        if (!waiting) return;
        delete this.pending[key];
        waiting.resolve(BV.decodeBlob(BV.base64ToBuffer(text)));
      };
    }
    get(kind, params) {
      const key = BV.staticKey(kind, values(kind, params));
      if (!this.cache[key]) {
        this.cache[key] = new Promise((resolve, reject) => {
          this.pending[key] = { resolve: resolve };
          const script = document.createElement("script");
          script.src = `data/b/${key}.js`;
          script.onload = () => script.remove();
          script.onerror = () => {
            delete this.pending[key];
            delete this.cache[key];
            script.remove();
            reject(new Error(`${kind}: not in this export (${key})`));
          };
          document.head.appendChild(script);
        });
      }
      return this.cache[key];
    }
    tiffUrl(item, stage) {
      return `tiff/${BV.staticKey("tiff", [item, stage])}.tif`;
    }
  }

  BV.makeSource = function () {
    return window.BV_STATIC ? new StaticSource() : new ServerSource();
  };
})(window.BV);
