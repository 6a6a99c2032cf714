// The pure part of decoding in the browser (app/live_decoder.js; the worker is app/static/decoder_worker.js): the
// page's bytes as arrays (base64, float32 or float16), z for a pad's values from the page's grid, and the model's outputs made
// into what the page draws: labels at the model's size (the card's largest-component clean-up included), the
// picture at the page's size (app/frame.picture's recipe: probabilities upsampled bilinearly, thresholded or
// arg-maxed, blended over the base picture and outlined in the label's colour), the drawn channels' Gaussians
// (app/frame.gaussians) and the mask's Dice line against the page's ground truth (app/frame.dice_line, its text
// exactly). No DOM: the same file runs in the browser (`DecodeCore`) and under `node --test`.
/**
 * @import {ZGrid, DecoderPart, Gaussians, TruthPart} from "./protocol.js"
 * @typedef {{labels: Uint8Array, probabilities: Float32Array}} Decoded  labels (H x W) and probabilities (K x H x W)
 */
const DecodeCore = (function () {
  "use strict";

  /** The bytes of a base64 text. @param {string} text @returns {Uint8Array} */
  function bytesOf(text) {
    const raw = atob(text);
    const bytes = new Uint8Array(raw.length);
    for (let k = 0; k < raw.length; k += 1) bytes[k] = raw.charCodeAt(k);
    return bytes;
  }

  /** IEEE 754 half-precision numbers (little-endian bytes) as float32. @param {Uint8Array} bytes */
  function halfToFloat(bytes) {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const out = new Float32Array(bytes.byteLength / 2);
    for (let k = 0; k < out.length; k += 1) {
      const h = view.getUint16(2 * k, true);
      const sign = h & 0x8000 ? -1 : 1, exponent = (h >> 10) & 0x1f, fraction = h & 0x3ff;
      out[k] = exponent === 0 ? sign * fraction * 2 ** -24
        : exponent === 31 ? (fraction ? NaN : sign * Infinity)
        : sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
    }
    return out;
  }

  /** Float32 numbers (little-endian bytes). @param {Uint8Array} bytes */
  function floats(bytes) {
    const copy = bytes.slice();  // aligned
    return new Float32Array(copy.buffer, 0, copy.byteLength / 4);
  }

  /** A value's index on a grid [low, step, count, decimals], or -1 off the grid (app/live_controls.clean). */
  function gridIndex(grid, value) {
    const [low, step, count] = grid;
    const k = Math.round((value - low) / step);
    return k >= 0 && k < count && Math.abs(low + k * step - value) < 1e-6 * Math.max(1, step) ? k : -1;
  }

  /**
   * z for the pad's values from the page's grid, or null where it does not cover them (another value of a
   * control off the pad, a value off the grid).
   * @param {ZGrid} grid @param {Float32Array} table @param {Object<string, number>} values @returns {Float32Array|null}
   */
  function zAt(grid, table, values) {
    for (const [key, value] of Object.entries(grid.base)) if (values[key] !== value) return null;
    const i = gridIndex(grid.xs, values[grid.x]), j = gridIndex(grid.ys, values[grid.y]);
    if (i < 0 || j < 0) return null;
    const start = (j * grid.xs[2] + i) * grid.dim;
    return table.slice(start, start + grid.dim);
  }

  /**
   * Probabilities (sigmoid for one class, else softmax) and labels (p > 0.5, else the arg-max) of logits
   * (K x H x W), as inside_core.explorer does, then the card's clean-up: only the largest face-connected piece of
   * each label in `keep`; where it removed a pixel the probabilities say background (as the Explorer's).
   * @param {Float32Array} logits @param {number} K @param {number} H @param {number} W @param {number[]} keep
   * @returns {Decoded}
   */
  function labelsFromLogits(logits, K, H, W, keep) {
    const n = H * W, probabilities = new Float32Array(K * n), labels = new Uint8Array(n);
    for (let i = 0; i < n; i += 1) {
      if (K === 1) {
        const p = 1 / (1 + Math.exp(-logits[i]));
        probabilities[i] = p;
        labels[i] = p > 0.5 ? 1 : 0;
        continue;
      }
      let top = -Infinity, best = 0, sum = 0;
      for (let c = 0; c < K; c += 1) if (logits[c * n + i] > top) { top = logits[c * n + i]; best = c; }
      for (let c = 0; c < K; c += 1) sum += (probabilities[c * n + i] = Math.exp(logits[c * n + i] - top));
      for (let c = 0; c < K; c += 1) probabilities[c * n + i] /= sum;
      labels[i] = best;
    }
    for (const label of keep) {
      const removed = smallerPieces(labels, H, W, label);
      for (const i of removed) {
        labels[i] = 0;
        for (let c = 0; c < K; c += 1) probabilities[c * n + i] = K > 1 && c === 0 ? 1 : 0;
      }
    }
    return { labels, probabilities };
  }

  /** The pixels of `label` outside its largest face-connected piece (scipy.ndimage.label's cross; ties: the first
   * piece found in raster order, as the arg-max of the sizes). @returns {number[]} */
  function smallerPieces(labels, H, W, label) {
    const piece = new Int32Array(H * W), sizes = [0];
    for (let start = 0; start < H * W; start += 1) {
      if (labels[start] !== label || piece[start]) continue;
      const id = sizes.length, stack = [start];
      piece[start] = id;
      let size = 0;
      while (stack.length) {
        const i = /** @type {number} */ (stack.pop()), r = Math.floor(i / W), c = i % W;
        size += 1;
        for (const j of [r > 0 ? i - W : -1, r < H - 1 ? i + W : -1, c > 0 ? i - 1 : -1, c < W - 1 ? i + 1 : -1]) {
          if (j >= 0 && !piece[j] && labels[j] === label) { piece[j] = id; stack.push(j); }
        }
      }
      sizes.push(size);
    }
    if (sizes.length <= 2) return [];
    let largest = 1;
    for (let id = 2; id < sizes.length; id += 1) if (sizes[id] > sizes[largest]) largest = id;
    const removed = [];
    for (let i = 0; i < H * W; i += 1) if (piece[i] && piece[i] !== largest) removed.push(i);
    return removed;
  }

  /**
   * Labels at the display size (h x w) from probabilities (K x H x W) upsampled bilinearly with half-pixel centres
   * (torch's `interpolate(..., align_corners=False)`), thresholded at 0.5 (K = 1) or arg-maxed: app/plots.smooth_labels.
   * @returns {Uint8Array}
   */
  function smoothLabels(probabilities, K, H, W, h, w) {
    const out = new Uint8Array(h * w), n = H * W;
    const axis = (size, from) => {  // per output index: the two source indices and the weight of the second
      const i0 = new Int32Array(size), i1 = new Int32Array(size), t = new Float32Array(size);
      for (let k = 0; k < size; k += 1) {
        const source = Math.max(0, (k + 0.5) * (from / size) - 0.5), low = Math.floor(source);
        i0[k] = Math.min(low, from - 1);
        i1[k] = Math.min(low + 1, from - 1);
        t[k] = source - low;
      }
      return { i0, i1, t };
    };
    const rows = axis(h, H), columns = axis(w, W);
    for (let y = 0; y < h; y += 1) {
      const r0 = rows.i0[y] * W, r1 = rows.i1[y] * W, ty = rows.t[y];
      for (let x = 0; x < w; x += 1) {
        const c0 = columns.i0[x], c1 = columns.i1[x], tx = columns.t[x];
        let best = 0, top = -Infinity;
        for (let c = 0; c < K; c += 1) {
          const p = probabilities, o = c * n;
          const v = (1 - ty) * ((1 - tx) * p[o + r0 + c0] + tx * p[o + r0 + c1]) + ty * ((1 - tx) * p[o + r1 + c0] + tx * p[o + r1 + c1]);
          if (K === 1) best = v > 0.5 ? 1 : 0;
          else if (v > top) { top = v; best = c; }
        }
        out[y * w + x] = best;
      }
    }
    return out;
  }

  /**
   * The picture: `base` (RGBA, h x w) with the labelled pixels blended with their colour by `alpha` and each
   * label's outline (its pixels with a 4-neighbour outside it, or at the edge) in its colour: app/plots.overlay.
   * @param {Uint8ClampedArray} base @param {Uint8Array} labels @param {number} h @param {number} w
   * @param {Object<string, number[]>} colours @param {number} alpha @returns {Uint8ClampedArray}
   */
  function paint(base, labels, h, w, colours, alpha) {
    const out = new Uint8ClampedArray(base);
    const table = [];  // label -> its colour (an array lookup per labelled pixel, not an object's)
    for (const [label, colour] of Object.entries(colours)) table[Number(label)] = colour;
    for (let r = 0, i = 0; r < h; r += 1) {
      for (let c = 0; c < w; c += 1, i += 1) {
        const l = labels[i];
        if (!l || !table[l]) continue;
        const colour = table[l];
        const inner = r > 0 && r < h - 1 && c > 0 && c < w - 1 && labels[i - w] === l && labels[i + w] === l
          && labels[i - 1] === l && labels[i + 1] === l;
        for (let k = 0; k < 3; k += 1) {
          out[4 * i + k] = inner ? Math.floor((1 - alpha) * base[4 * i + k] + alpha * colour[k] + 0.5) : colour[k];
        }
      }
    }
    return out;
  }

  /** The cells of an nx x ny grid in the order to decode them ahead from cell (i, j): the two slider lines
   * through it first (a slider's drag stays on one), nearest first, then the rest by their distance (the larger
   * of the two steps away, then the sum). @returns {Array<[number, number]>} */
  function aheadOrder(nx, ny, i, j) {
    const cells = /** @type {Array<[number, number]>} */ ([]);
    for (let b = 0; b < ny; b += 1) for (let a = 0; a < nx; a += 1) cells.push([a, b]);
    const rank = (/** @type {[number, number]} */ [a, b]) => {
      const di = Math.abs(a - i), dj = Math.abs(b - j), line = di === 0 || dj === 0 ? 0 : 1;
      return [line, Math.max(di, dj), di + dj];
    };
    const ranks = new Map(cells.map((cell) => [cell, rank(cell)]));
    return cells.sort((p, q) => {
      const [x, y] = [/** @type {number[]} */ (ranks.get(p)), /** @type {number[]} */ (ranks.get(q))];
      return x[0] - y[0] || x[1] - y[1] || x[2] - y[2];
    });
  }

  /**
   * Two 32-bit position-weighted sums of the picture's labels (h x w) and its size, as text: app/frame.labels_hash
   * gives the same for the same labels. The page's exact frame carries it, so a mask decoded here whose labels
   * hash the same is kept rather than painted again (app/live_decoder.js `keeps`).
   * @param {Uint8Array} labels @param {number} h @param {number} w @returns {string}
   */
  function labelsHash(labels, h, w) {
    let a = 0, b = 0;
    for (let i = 0; i < labels.length; i += 1) {
      const l = labels[i];
      if (!l) continue;
      a = (a + Math.imul(l, (Math.imul(i, 0x9E3779B1) + 1) | 0)) >>> 0;
      b = (b + Math.imul(l, Math.imul(i + 0x165667B1, 0x85EBCA6B))) >>> 0;
    }
    const hex = (v) => v.toString(16).padStart(8, "0");
    return hex(a) + hex(b) + ":" + h + "x" + w;
  }

  /**
   * The drawn channels' Gaussians in pixels of the model's grid (H x W), as app/frame.gaussians: means
   * (t + 1) n / 2 - 0.5, 1-sigma radii sigma n / 2, gamma, each rounded to 2 decimals; where z points is not drawn
   * (the pad's own point shows it). Null without the INSIDE parameters of `layer` or without channels.
   * @param {Object<string, Float32Array>} outputs @param {number} layer @param {number[]|null} channels
   * @returns {Gaussians|null}
   */
  function gaussians(outputs, layer, channels, H, W) {
    if (!channels || !outputs["mu_x" + layer]) return null;
    const round = (v) => Math.round(v * 100) / 100;
    const pick = (name, f) => channels.map((c) => round(f(outputs[name + layer][c])));
    return [pick("mu_x", (t) => (t + 1) * W / 2 - 0.5), pick("mu_y", (t) => (t + 1) * H / 2 - 0.5),
            pick("sigma_x", (s) => s * W / 2), pick("sigma_y", (s) => s * H / 2), pick("gamma", (g) => g), null];
  }

  // ------------------------------------------------------------------------------------- the Dice line
  /** A label map's runs [label, count, ...], as app/scrub.run_lengths writes them (labelsOfRuns reads both): the
   * decoded masks kept in the browser (a mask of a few objects is ~1 % of its size). @param {Uint8Array} labels */
  function runsOf(labels) {
    const runs = [];
    for (let i = 0; i < labels.length; i += 1) {
      if (i > 0 && labels[i] === labels[i - 1]) runs[runs.length - 1] += 1;
      else runs.push(labels[i], 1);
    }
    return Uint32Array.from(runs);
  }

  /** A label map (n pixels) from its runs [label, count, ...] (app/scrub.run_lengths, `runsOf`), or null if they do
   * not cover exactly n pixels. @param {ArrayLike<number>} runs @param {number} n @returns {Uint8Array|null} */
  function labelsOfRuns(runs, n) {
    const out = new Uint8Array(n);
    let at = 0;
    for (let k = 0; k + 1 < runs.length; k += 2) {
      if (at + runs[k + 1] > n) return null;
      out.fill(runs[k], at, at + runs[k + 1]);
      at += runs[k + 1];
    }
    return at === n ? out : null;
  }

  /** The index of the truth map of `values` on the part's grid (255: no ground truth), or -1 off the grid.
   * @param {ZGrid} grid @param {Uint8Array} index @param {Object<string, number>} values */
  function truthIndex(grid, index, values) {
    const i = gridIndex(grid.xs, values[grid.x]), j = gridIndex(grid.ys, values[grid.y]);
    return i < 0 || j < 0 ? -1 : index[j * grid.xs[2] + i];
  }

  /** {label: Dice} of two label maps, as inside_core.metrics.dice: 2|P and G| / (|P| + |G|), 1 where the label is
   * in neither. @param {Uint8Array} labels @param {Uint8Array} truth @param {number[]} which @returns {number[]} */
  function dicePerLabel(labels, truth, which) {
    return which.map((label) => {
      let both = 0, total = 0;
      for (let i = 0; i < labels.length; i += 1) {
        const p = labels[i] === label, g = truth[i] === label;
        total += (p ? 1 : 0) + (g ? 1 : 0);
        if (p && g) both += 1;
      }
      return total === 0 ? 1 : 2 * both / total;
    });
  }

  /** numpy's mean of float64 numbers: its pairwise sum (in order below 8 numbers, else eight running sums
   * combined in pairs, then the rest; halves past 128), over n. @param {number[]} values */
  function numpyMean(values) {
    const sum = (start, n) => {
      if (n < 8) { let s = 0; for (let k = 0; k < n; k += 1) s += values[start + k]; return s; }
      if (n > 128) {
        let half = Math.floor(n / 2);
        half -= half % 8;
        return sum(start, half) + sum(start + half, n - half);
      }
      const r = values.slice(start, start + 8);
      let k = 8;
      for (; k < n - (n % 8); k += 8) for (let j = 0; j < 8; j += 1) r[j] += values[start + k + j];
      let s = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
      for (; k < n; k += 1) s += values[start + k];
      return s;
    };
    return sum(0, values.length) / values.length;
  }

  /** Python's f"{x:.{digits}f}": correctly rounded, an exact tie to the even last digit (toFixed rounds ties up).
   * A tie: x * 2^(digits + 1) an odd integer m, x * 10^digits = m 5^digits / 2. @param {number} x */
  function fixed(x, digits) {
    const m = x * 2 ** (digits + 1);  // exact: a power of two
    if (!(Number.isInteger(m) && Math.abs(m % 2) === 1 && Math.abs(m) < 2 ** 40)) return x.toFixed(digits);
    const below = (Math.abs(m) * 5 ** digits - 1) / 2, kept = below % 2 === 0 ? below : below + 1;
    const text = String(kept).padStart(digits + 1, "0"), point = text.length - digits;
    return (x < 0 ? "-" : "") + text.slice(0, point) + (digits ? "." + text.slice(point) : "");
  }

  /**
   * The Dice line of decoded labels (the model's grid, after the card's clean-up) against a truth map, as
   * app/frame.dice_line writes it (Markdown: bold only). @param {Uint8Array} labels @param {Uint8Array} truth
   * @param {{labels: number[], names: string[], lead: string, empty: string}} words @returns {string}
   */
  function diceLine(labels, truth, words) {
    const scores = dicePerLabel(labels, truth, words.labels);
    const detail = scores.length === 1 ? ""
      : " (" + scores.map((v, k) => words.names[k] + " " + fixed(v, 2)).join(", ") + ")";
    const text = words.lead + "**" + fixed(numpyMean(scores), 3) + "**" + detail;
    return truth.some((v) => v !== 0) ? text : text + words.empty;
  }

  /**
   * The line under a decoded mask of `values`: its Dice line, the words for no ground truth, or null where the
   * part has no truth for them. @param {ZGrid} grid @param {TruthPart} truth
   * @param {Uint8Array} index @param {Array<Uint8Array|null>} maps @returns {string|null}
   */
  function truthLine(grid, truth, index, maps, values, labels) {
    const k = truthIndex(grid, index, values);
    if (k === 255) return truth.none;
    return k >= 0 && maps[k] ? diceLine(labels, /** @type {Uint8Array} */ (maps[k]), truth) : null;
  }

  return { bytesOf, halfToFloat, floats, gridIndex, zAt, labelsFromLogits, smallerPieces, smoothLabels, paint,
           runsOf, aheadOrder, labelsHash, gaussians, labelsOfRuns, truthIndex, dicePerLabel, numpyMean, fixed,
           diceLine, truthLine };
})();
if (typeof module === "object" && module.exports) module.exports = DecodeCore;  // Node's test runner
