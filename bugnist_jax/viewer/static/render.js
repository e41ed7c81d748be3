// Turning arrays into pictures: planes of 2D/3D arrays (a slice along D or a MIP along one
// axis), the blue/black/red map around zero for int8 codes (value = code / 127 * scale, one
// scale per layer), grey or RGB for images, and attribution overlays on the input.
"use strict";

(function (BV) {
  const NEG = [40, 110, 255];
  const POS = [255, 45, 20];

  // RGBA of every int8 code (index code + 128); `boost` brightens small values
  // (DeepVisionVR's log boost of dark regions): m = log(1 + 9|v|) / log(10).
  const luts = {};
  BV.lut = function (boost) {
    const key = boost ? "boost" : "linear";
    if (luts[key]) return luts[key];
    const lut = new Uint8ClampedArray(256 * 4);
    for (let code = -128; code < 128; code++) {
      const v = Math.max(-1, Math.min(1, code / 127));
      const m = boost ? Math.log(1 + 9 * Math.abs(v)) / Math.log(10) : Math.abs(v);
      const c = v < 0 ? NEG : POS;
      const i = (code + 128) * 4;
      lut[i] = c[0] * m;
      lut[i + 1] = c[1] * m;
      lut[i + 2] = c[2] * m;
      lut[i + 3] = 255;
    }
    luts[key] = lut;
    return lut;
  };

  // The 2D plane shown of a spatial array: `dims` its spatial shape ([H, W] or [D, H, W]),
  // element (i, j[, k]) at array[base + linear index * stride]. view = {mode, t}: mode
  // 'slice' (index floor(t * D) along D) or 'mip0'/'mip1'/'mip2' (the value of largest
  // magnitude along that axis, or the largest with signed = false). Returns {h, w, values}.
  BV.plane = function (array, dims, base, stride, view, signed) {
    if (dims.length === 2) {
      const [h, w] = dims;
      const values = new Float32Array(h * w);
      for (let i = 0; i < h * w; i++) values[i] = array[base + i * stride];
      return { h: h, w: w, values: values };
    }
    const [D, H, W] = dims;
    if (view.mode === "slice") {
      const d = BV.sliceIndex(view.t, D);
      const values = new Float32Array(H * W);
      const off = base + d * H * W * stride;
      for (let i = 0; i < H * W; i++) values[i] = array[off + i * stride];
      return { h: H, w: W, values: values };
    }
    const axis = Number(view.mode.slice(3));
    const out = [
      [H, W],
      [D, W],
      [D, H],
    ][axis];
    const values = new Float32Array(out[0] * out[1]);
    const seen = new Uint8Array(values.length);
    for (let d = 0; d < D; d++) {
      for (let y = 0; y < H; y++) {
        for (let x = 0; x < W; x++) {
          const v = array[base + ((d * H + y) * W + x) * stride];
          const o = axis === 0 ? y * W + x : axis === 1 ? d * W + x : d * H + y;
          const best = values[o];
          if (!seen[o] || (signed ? Math.abs(v) > Math.abs(best) : v > best)) {
            values[o] = v;
            seen[o] = 1;
          }
        }
      }
    }
    return { h: out[0], w: out[1], values: values };
  };

  BV.sliceIndex = function (t, depth) {
    return Math.max(0, Math.min(depth - 1, Math.floor(t * depth)));
  };

  function fit(canvas, w, h) {
    if (canvas.width !== w) canvas.width = w;
    if (canvas.height !== h) canvas.height = h;
    return canvas.getContext("2d");
  }

  // Channel c of int8 panels [C, *S] (or a flat [F] vector as a near-square grid of cells).
  BV.drawCodes = function (canvas, codes, c, view, boost) {
    const lut = BV.lut(boost);
    let p;
    if (codes.shape.length === 1) {
      const n = codes.shape[0];
      const w = Math.ceil(Math.sqrt(n));
      const h = Math.ceil(n / w);
      p = { h: h, w: w, values: new Float32Array(h * w), empty: n };
      for (let i = 0; i < n; i++) p.values[i] = codes[i];
    } else {
      const dims = codes.shape.slice(1);
      const size = dims.reduce((a, b) => a * b, 1);
      p = BV.plane(codes, dims, c * size, 1, view, true);
    }
    const ctx = fit(canvas, p.w, p.h);
    const img = ctx.createImageData(p.w, p.h);
    for (let i = 0; i < p.values.length; i++) {
      const j = (Math.round(p.values[i]) + 128) * 4;
      const blank = p.empty !== undefined && i >= p.empty;
      img.data[i * 4] = blank ? 60 : lut[j];
      img.data[i * 4 + 1] = blank ? 60 : lut[j + 1];
      img.data[i * 4 + 2] = blank ? 60 : lut[j + 2];
      img.data[i * 4 + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
    return p;
  };

  // RGBA pixels of a uint8 image [*S, C] (C = 1 grey, 3 RGB; other C: the first channel).
  BV.imagePixels = function (image, dims, channels, view) {
    const rgb = channels === 3;
    const planes = (rgb ? [0, 1, 2] : [0]).map((k) =>
      BV.plane(image, dims, k, channels, view, false),
    );
    const { h, w } = planes[0];
    const pixels = new Uint8ClampedArray(h * w * 4);
    for (let i = 0; i < h * w; i++) {
      for (let k = 0; k < 3; k++) pixels[i * 4 + k] = planes[rgb ? k : 0].values[i];
      pixels[i * 4 + 3] = 255;
    }
    return { h: h, w: w, pixels: pixels };
  };

  BV.drawImage = function (canvas, image, dims, channels, view) {
    const p = BV.imagePixels(image, dims, channels, view);
    const ctx = fit(canvas, p.w, p.h);
    ctx.putImageData(new ImageData(p.pixels, p.w, p.h), 0, 0);
  };

  // A map's codes after the sign option: 'default' the method's own map, 'all' signed,
  // 'positive'/'negative' one sign, 'absolute' the magnitude (of the signed map if sent).
  BV.signedCodes = function (attr, sign) {
    const source = attr.arrays.signed || attr.arrays.policy;
    if (sign === "default") return attr.arrays.policy;
    const out = new Int8Array(source.length);
    out.shape = source.shape;
    for (let i = 0; i < source.length; i++) {
      const v = source[i];
      out[i] =
        sign === "positive" ? Math.max(v, 0) : sign === "negative" ? Math.min(v, 0)
          : sign === "absolute" ? Math.abs(v) : v;
    }
    return out;
  };

  // The input (grey/RGB) with a map on top: colour by sign, opacity * |value| as alpha.
  BV.drawOverlay = function (canvas, image, dims, channels, codes, view, opacity) {
    const base = BV.imagePixels(image, dims, channels, view);
    const m = BV.plane(codes, dims, 0, 1, view, true);
    const ctx = fit(canvas, base.w, base.h);
    const px = base.pixels;
    for (let i = 0; i < m.values.length; i++) {
      const v = m.values[i] / 127;
      const a = Math.min(1, opacity * Math.abs(v));
      const c = v < 0 ? NEG : POS;
      for (let k = 0; k < 3; k++) px[i * 4 + k] = px[i * 4 + k] * (1 - a) + c[k] * a;
    }
    ctx.putImageData(new ImageData(px, base.w, base.h), 0, 0);
  };
})(window.BV);
