// Log-magnitude spectrum for display (DESIGN.md §1 grid: cycles/pixel, fftshift puts DC at the centre).
//
// A Welch estimate: Hann-windowed tiles of at most 128×128 pixels at FULL resolution, their
// periodograms averaged (at most 3×3 tiles). Unlike a downscaled copy, tiles keep the axes in
// cycles/pixel of the original image up to Nyquist, where periodic noise usually lives; the price
// is a coarser frequency step (1/tile). A plain DFT with cached twiddles is fast enough here.
const MAX_TILE = 128;
const MAX_TILES_PER_AXIS = 3;
const tables = new Map();

function twiddles(n) {
  if (!tables.has(n)) {
    const cos = new Float64Array(n * n);
    const sin = new Float64Array(n * n);
    for (let k = 0; k < n; k++) {
      for (let j = 0; j < n; j++) {
        const angle = (-2 * Math.PI * ((k * j) % n)) / n;
        cos[k * n + j] = Math.cos(angle);
        sin[k * n + j] = Math.sin(angle);
      }
    }
    tables.set(n, { cos, sin });
  }
  return tables.get(n);
}

// One DFT along a line of n complex values (im null: real) at offset + j·stride of re/im, with
// twiddles t = twiddles(n); the k-th coefficient goes to offset + k·stride of outRe/outIm.
function dftLine(t, n, re, im, offset, stride, outRe, outIm) {
  for (let k = 0; k < n; k++) {
    let sr = 0;
    let si = 0;
    for (let j = 0; j < n; j++) {
      const c = t.cos[k * n + j];
      const s = t.sin[k * n + j];
      const a = re[offset + j * stride];
      const b = im === null ? 0 : im[offset + j * stride];
      sr += a * c - b * s;
      si += a * s + b * c;
    }
    outRe[offset + k * stride] = sr;
    outIm[offset + k * stride] = si;
  }
}

// |DFT2(x)|² of a real h×w array (row-major), unshifted: the rows' DFTs, then the columns'.
export function powerSpectrum(x, h, w) {
  const rowRe = new Float64Array(h * w);
  const rowIm = new Float64Array(h * w);
  for (let y = 0; y < h; y++) dftLine(twiddles(w), w, x, null, y * w, 1, rowRe, rowIm);
  const re = new Float64Array(h * w);
  const im = new Float64Array(h * w);
  for (let k = 0; k < w; k++) dftLine(twiddles(h), h, rowRe, rowIm, k, w, re, im);
  return re.map((a, i) => a * a + im[i] * im[i]);
}

function origins(n, tile) {
  const count = Math.min(MAX_TILES_PER_AXIS, Math.ceil(n / tile));
  if (count <= 1) return [0];
  return Array.from({ length: count }, (_, i) => Math.round((i * (n - tile)) / (count - 1)));
}

function hann(n) {
  return Float64Array.from({ length: n }, (_, i) => (n > 1 ? 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / n) : 1));
}

// The spectrum of an image drawn (full size) on a 2-D canvas context.
// Returns {th, tw, log (Float32Array th×tw, fftshifted), height, width}.
export function estimateSpectrum(context, width, height) {
  const th = Math.min(MAX_TILE, height);
  const tw = Math.min(MAX_TILE, width);
  const wy = hann(th);
  const wx = hann(tw);
  const total = new Float64Array(th * tw);
  const tile = new Float64Array(th * tw);
  for (const oy of origins(height, th)) {
    for (const ox of origins(width, tw)) {
      const rgba = context.getImageData(ox, oy, tw, th).data;
      let mean = 0;
      for (let i = 0; i < th * tw; i++) {
        tile[i] = 0.299 * rgba[4 * i] + 0.587 * rgba[4 * i + 1] + 0.114 * rgba[4 * i + 2];
        mean += tile[i];
      }
      mean /= th * tw;
      for (let y = 0; y < th; y++) {
        for (let x = 0; x < tw; x++) tile[y * tw + x] = (tile[y * tw + x] - mean) * wy[y] * wx[x];
      }
      const power = powerSpectrum(tile, th, tw);
      for (let i = 0; i < power.length; i++) total[i] += power[i];
    }
  }
  const log = new Float32Array(th * tw);
  const sy = Math.ceil(th / 2);
  const sx = Math.ceil(tw / 2);
  for (let i = 0; i < th; i++) {
    for (let j = 0; j < tw; j++) {
      // fftshift: shifted[i] = unshifted[(i + ceil(n/2)) mod n]
      log[i * tw + j] = Math.log10(total[((i + sy) % th) * tw + ((j + sx) % tw)] + 1e-6);
    }
  }
  return { th, tw, log, height, width };
}

// Draw an image source on a canvas at full size and estimate its spectrum.
export async function spectrumOf(source) {
  const bitmap = await createImageBitmap(source);
  const canvas = document.createElement("canvas");
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(bitmap, 0, 0);
  bitmap.close();
  return estimateSpectrum(context, canvas.width, canvas.height);
}

function percentile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))))];
}

// A tw×th gray canvas of the log spectrum, contrast from the 5th to the 99.9th percentile.
export function spectrumImage(spec) {
  const sorted = Float32Array.from(spec.log).sort();
  const lo = percentile(sorted, 0.05);
  const hi = Math.max(percentile(sorted, 0.999), lo + 1e-6);
  const canvas = document.createElement("canvas");
  canvas.width = spec.tw;
  canvas.height = spec.th;
  const context = canvas.getContext("2d");
  const pixels = context.createImageData(spec.tw, spec.th);
  for (let i = 0; i < spec.log.length; i++) {
    const v = Math.round(255 * Math.min(1, Math.max(0, (spec.log[i] - lo) / (hi - lo))));
    pixels.data.set([v, v, v, 255], 4 * i);
  }
  context.putImageData(pixels, 0, 0);
  return canvas;
}

// Geometry of a square display canvas of side `size` showing a shifted th×tw spectrum:
// the bin of frequency f sits at index f·n + floor(n/2); its centre at (index + 0.5)·size/n.
export class SpectrumGeometry {
  constructor(size, th, tw) {
    Object.assign(this, { size, th, tw });
  }

  toCanvas(fy, fx) {
    const { size, th, tw } = this;
    return {
      x: ((fx * tw + Math.floor(tw / 2) + 0.5) * size) / tw,
      y: ((fy * th + Math.floor(th / 2) + 0.5) * size) / th,
    };
  }

  fromCanvas(x, y) {
    const { size, th, tw } = this;
    return {
      fx: ((x * tw) / size - 0.5 - Math.floor(tw / 2)) / tw,
      fy: ((y * th) / size - 0.5 - Math.floor(th / 2)) / th,
    };
  }

  get scale() {
    return this.size; // canvas pixels per cycle/pixel (both axes)
  }
}

// The brightest bin within ±reach bins of (fy, fx), never DC; frequencies in cycles/pixel.
export function snapToPeak(spec, fy, fx, reach = 2) {
  const cy = Math.floor(spec.th / 2);
  const cx = Math.floor(spec.tw / 2);
  const iy = Math.round(fy * spec.th) + cy;
  const ix = Math.round(fx * spec.tw) + cx;
  let best = null;
  for (let y = iy - reach; y <= iy + reach; y++) {
    for (let x = ix - reach; x <= ix + reach; x++) {
      if (y < 0 || x < 0 || y >= spec.th || x >= spec.tw || (y === cy && x === cx)) continue;
      const v = spec.log[y * spec.tw + x];
      if (best === null || v > best.v) best = { v, y, x };
    }
  }
  if (best === null) return { fy, fx };
  return { fy: (best.y - cy) / spec.th, fx: (best.x - cx) / spec.tw };
}
