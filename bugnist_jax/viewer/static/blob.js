// The viewer's wire format (bugnist_jax/viewer/blob.py): "BVW1", a uint32 header length, a
// JSON header {meta, arrays: {name: {dtype, shape, offset}}}, padding to 8, the array bytes.
// Arrays become typed-array views (no copy) with a `shape` property. Little-endian, as every
// browser's typed arrays are in practice.
"use strict";
window.BV = window.BV || {};

(function (BV) {
  const TYPES = { int8: Int8Array, uint8: Uint8Array, int32: Int32Array, float32: Float32Array };

  BV.decodeBlob = function (buffer) {
    const bytes = new Uint8Array(buffer);
    const magic = String.fromCharCode(bytes[0], bytes[1], bytes[2], bytes[3]);
    if (magic !== "BVW1") throw new Error("not a viewer blob");
    const n = new DataView(buffer).getUint32(4, true);
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
    const start = 8 + n + ((8 - ((8 + n) % 8)) % 8);
    const arrays = {};
    for (const [name, spec] of Object.entries(header.arrays)) {
      const count = spec.shape.reduce((a, b) => a * b, 1);
      const array = new TYPES[spec.dtype](buffer, start + spec.offset, count);
      array.shape = spec.shape;
      arrays[name] = array;
    }
    return { meta: header.meta, arrays: arrays };
  };

  BV.base64ToBuffer = function (text) {
    const binary = atob(text);
    const out = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
    return out.buffer;
  };
})(window.BV);
