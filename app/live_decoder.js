// Decoding held values in the browser (app/live_controls.js drives it; app/protocol.py has the messages): the
// model's decoder (.onnx) runs in a web worker (app/static/decoder_worker.js, ONNX Runtime Web served by Streamlit's
// static serving) on the image's features, both sent by the page once (`DecoderPart`); the mask for the value under
// the pointer is painted into a canvas over the page's picture, with its Gaussians, by `DecodeCore` (the pure
// functions, node-tested), and its Dice line under it (each grid value's ground truth came with the part:
// `TruthPart`; the page's frame brings the same line). One decode in flight, the newest value wins. The release's
// exact frame still comes from the page and replaces the canvas, unless its labels are those of the mask shown (its
// `labels_hash`): then the canvas stays (nothing is painted again): only its Gaussians and line (the same) are taken.
// Anything that fails (no worker, a model the runtime cannot load) says "off" to the page once, which then keeps its
// pictures made ahead.
/** @import {DecoderOffer, DecoderPart, Gaussians} from "./protocol.js" */
const DECODER_WORKER = "app/static/decoder_worker.js";  // Streamlit's static serving: app/static/ at /app/static/
const DECODER_START_MS = 20000;  // a worker (and its runtime) not ready by then is taken as failed
const DECODER_ASK_MS = 1500;  // while the page exports the model, its offer is asked for again this often
const DECODE_CACHE_BYTES = 32e6;  // decoded masks kept, as runs (a few kB each; 3/4 of it may be decoded ahead)
// the line under a decoded mask where the part brought no ground truth (an older page)
const HELD_LINE = "Decoded in this browser: the Dice line comes with the page's exact picture.";

/**
 * @param {HTMLCanvasElement} canvas  drawn over the page's picture
 * @param {{painted: (attention: (Gaussians|null), line: string) => void, changed: () => void, held: () => boolean}}
 *   hooks  `painted`: a mask was painted, its Gaussians and the line under it; `changed`: it failed, or became
 *   ready: what it asks for and the line that says where values are decoded change
 */
function browserDecoder(canvas, hooks) {
  const { bytesOf, halfToFloat, floats, zAt, labelsFromLogits, smoothLabels, paint, runsOf, labelsOfRuns, labelsHash,
          gaussians, truthLine } = DecodeCore;
  let worker = null, state = "none";  // "none", "starting", "ready" (the runtime), "failed"
  let offer = /** @type {DecoderOffer|null} */ (null);
  let part = null;  // the part in use: {key, model, grid, table, logits, layer, channels, keep, colours, alpha, base,
  //                   truth, truthIndex, truthMaps (each grid value's map, the maps decoded)}
  let modelIn = null, inputsIn = null, baseReady = null;  // what the worker (and the base picture) hold
  let wanted = null, running = null, asked = {}, seq = 0, shown = false, epoch = 0;  // epoch: hidden since
  let drawn = { key: "", labels: "" };  // the part and the picture's labels (labelsHash) of the mask shown
  // what was decoded (part key + z -> what `make` gives), least recently used first: a value met again, or a
  // dead zone's (the same z), is painted without the worker; idle, the pad's grid is decoded ahead
  const cache = new Map();
  let cacheBytes = 0, asks = 0, shownAsk = 0, lastValues = null, shownKey = "", passedHash = "";
  let aheadFrom = "", aheadCells = /** @type {Array<[number, number]>} */ ([]), aheadNext = 0;  // what to decode ahead
  const stats = { decoded: 0, painted: 0, distinct: 0, hits: 0, changes: 0, passed: 0, cached: () => cache.size,
                  cacheBytes: () => cacheBytes, ms: /** @type {number[]} */ ([]), state: () => state,
                  hashes: new Set(), labels: /** @type {Uint8Array|null} */ (null), kept: 0,
                  drawn: "", line: "" };

  function start() {
    if (state !== "none") return;
    state = "starting";
    try {
      worker = new Worker(new URL(DECODER_WORKER, document.baseURI), { type: "module" });
    } catch (error) { fail(); return; }
    const timer = setTimeout(() => { if (state === "starting") fail(); }, DECODER_START_MS);
    worker.onerror = () => fail();
    worker.onmessage = (event) => {
      const message = event.data;
      if (message.type === "ready" && message.what === "runtime") { clearTimeout(timer); state = "ready"; load(); }
      else if (message.type === "ready" && message.what === "model") { modelIn = message.model; hooks.changed(); next(); }
      else if (message.type === "ready" && message.what === "inputs") { inputsIn = message.key; hooks.changed(); next(); }
      else if (message.type === "ran") ran(message);
      else if (message.type === "failed") fail();
    };
  }

  function fail() {
    if (state === "failed") return;
    state = "failed";
    if (worker) worker.terminate();
    hide();
    hooks.changed();
  }

  /** The page's offer, and the part it sent in this run (if any). */
  function take(newOffer, newPart, values) {
    offer = newOffer || null;
    if (values && !hooks.held()) lastValues = Object.assign({}, values);  // where to decode ahead, when idle
    if (offer) start();
    if (newPart && offer && newPart.key === offer.key) {
      part = Object.assign({}, newPart, { table: floats(bytesOf(newPart.grid.data)), onnx: null });
      if (newPart.truth) {  // each grid value's ground truth, its maps at the model's grid (their Dice lines)
        const [, , H, W] = newPart.logits;
        Object.assign(part, { truthIndex: bytesOf(newPart.truth.index),
                              truthMaps: newPart.truth.maps.map((runs) => labelsOfRuns(runs, H * W)) });
      }
      if (newPart.onnx) part.onnxBytes = bytesOf(newPart.onnx);
      const picture = new Image();
      picture.src = newPart.base;
      const key = newPart.key;
      picture.decode().then(() => {
        const h = picture.naturalHeight, w = picture.naturalWidth;
        const scratch = new OffscreenCanvas(w, h), context = /** @type {OffscreenCanvasRenderingContext2D} */ (
          scratch.getContext("2d"));
        context.drawImage(picture, 0, 0);
        if (part && part.key === key) { part.base = context.getImageData(0, 0, w, h); baseReady = key; hooks.changed(); next(); }
      }, () => fail());
      load();
    }
  }

  function load() {  // hand the worker what it lacks of the part in use
    if (state !== "ready" || !part) return;
    if (part.onnxBytes && modelIn !== part.model) {
      const bytes = part.onnxBytes;
      part.onnxBytes = null;
      worker.postMessage({ type: "model", model: part.model, onnx: bytes.buffer }, [bytes.buffer]);
    }
    if (inputsIn !== part.key) {
      const inputs = {};
      const read = part.dtype === "float32" ? (data) => floats(bytesOf(data)) : (data) => halfToFloat(bytesOf(data));
      for (const [name, [shape, data]] of Object.entries(part.inputs)) inputs[name] = [shape, read(data)];
      worker.postMessage({ type: "inputs", key: part.key, inputs: inputs });
    }
  }

  /** Whether the part of the page's offer is loaded: the model and features in the worker, the base picture. */
  function loaded() {
    return Boolean(state === "ready" && offer && part && part.key === offer.key && modelIn === part.model
                   && inputsIn === part.key && baseReady === part.key);
  }

  /** Whether the browser can decode these values now. */
  function covers(values) { return loaded() && Boolean(zAt(part.grid, part.table, values)); }

  /** Decode `values` (the newest wins; one in flight; a z decoded before is shown from the cache at once). False
   * where the browser cannot: the caller asks the page. `loose`: painted though the pointer is not held (a key press,
   * the release), until the page's picture comes. */
  function decode(values, loose = false) {
    if (!covers(values)) return false;
    lastValues = Object.assign({}, values);
    const key = zKey(values), known = cache.get(key);
    if (known && known.labelsHash !== passedHash) stats.passed += 1;  // a value whose mask differs from the last's
    if (known) passedHash = known.labelsHash;
    if (shown && key === shownKey && !running) { wanted = null; return true; }  // its mask is the one shown
    asks += 1;
    const made = known;
    if (made) {  // most recently used last
      cache.delete(key);
      cache.set(key, made);
      stats.hits += 1;
      wanted = null;
      shownAsk = asks;
      show(made, key, values);
      return true;
    }
    wanted = { values: Object.assign({}, values), loose: loose, key: key, ask: asks, part: part.key };
    next();
    return true;
  }

  function next() {
    if (running || !loaded()) return;
    if (wanted && (wanted.part !== part.key || !covers(wanted.values))) wanted = null;  // another image since
    if (!wanted && !hooks.held()) wanted = ahead();  // idle: a value of the grid not decoded yet
    if (!wanted) return;
    running = Object.assign({ id: (seq += 1), epoch: epoch }, wanted);
    wanted = null;
    worker.postMessage({ type: "run", id: running.id, z: zAt(part.grid, part.table, running.values) });
  }

  function ran(message) {
    const done = running;
    running = null;
    stats.decoded += 1;
    stats.ms.push(message.ms);
    if (stats.ms.length > 200) stats.ms.shift();
    if (!done || !part || done.part !== part.key) { next(); return; }
    const made = make(message.outputs);
    remember(done.key, made);
    next();  // the worker decodes the newest value while this one is painted
    // painted unless a newer value was shown meanwhile (from the cache), or it was decoded ahead
    if (done.epoch === epoch && !done.ahead && done.ask > shownAsk && (done.loose || hooks.held())) {
      shownAsk = done.ask;
      show(made, done.key, done.values);
    }
  }

  /** What the page draws of the model's outputs: the labels (model grid), the picture's labels at the base
   * picture's size (as runs: a few kB), their hashes, and the drawn channels' Gaussians. */
  function make(outputs) {
    const [, K, H, W] = part.logits, h = part.base.height, w = part.base.width;
    const { labels, probabilities } = labelsFromLogits(outputs.logits, K, H, W, part.keep);
    const smooth = smoothLabels(probabilities, K, H, W, h, w);
    const runs = runsOf(smooth), labelRuns = runsOf(labels);
    // the picture's labels (what is drawn) identify the mask: how many distinct masks were painted (tests, benchmarks)
    return { labels: labelRuns, runs, labelsHash: labelsHash(smooth, h, w), h, w, n: H * W,
             attention: gaussians(outputs, part.layer, part.channels, H, W),
             bytes: 4 * (runs.length + labelRuns.length) + 200 };
  }

  function zKey(values) {  // the cache's key of a value: the part and its z (null: off the grid)
    const z = zAt(part.grid, part.table, values);
    return z && part.key + ":" + Array.from(z).join(",");
  }

  function remember(key, made) {  // the least recently used go first, past DECODE_CACHE_BYTES
    if (cache.has(key)) return;
    cache.set(key, made);
    cacheBytes += made.bytes;
    for (const [old, entry] of cache) {
      if (cacheBytes <= DECODE_CACHE_BYTES) break;
      cache.delete(old);
      cacheBytes -= entry.bytes;
    }
  }

  /** Idle: the next grid value not decoded yet, the slider lines through the point first, then outwards from it
   * (`DecodeCore.aheadOrder`); null when all are, or the cache is three quarters full. */
  function ahead() {
    const grid = part.grid, values = lastValues;
    if (!values || cacheBytes > 0.75 * DECODE_CACHE_BYTES) return null;
    const from = part.key + JSON.stringify(values);
    if (from !== aheadFrom) {
      const [i, j] = [DecodeCore.gridIndex(grid.xs, values[grid.x]), DecodeCore.gridIndex(grid.ys, values[grid.y])];
      [aheadFrom, aheadCells, aheadNext] = [from, i < 0 || j < 0 ? [] : DecodeCore.aheadOrder(grid.xs[2], grid.ys[2], i, j), 0];
    }
    while (aheadNext < aheadCells.length) {
      const [i, j] = aheadCells[aheadNext++];
      const at = (sizes, k) => Number((sizes[0] + k * sizes[1]).toFixed(sizes[3]));
      const moved = Object.assign({}, values, { [grid.x]: at(grid.xs, i), [grid.y]: at(grid.ys, j) });
      const key = zKey(moved);
      if (key && !cache.has(key)) return { values: moved, loose: false, key: key, ask: 0, ahead: true, part: part.key };
    }
    return null;
  }

  function show(made, key, values) {  // the mask, its Gaussians and Dice line, painted over the page's picture
    shownKey = key;
    const { h, w } = made, smooth = /** @type {Uint8Array} */ (labelsOfRuns(made.runs, h * w));
    const picture = paint(part.base.data, smooth, h, w, part.colours, part.alpha);
    drawn = { key: part.key, labels: stats.drawn = made.labelsHash };
    if (canvas.width !== w || canvas.height !== h) Object.assign(canvas, { width: w, height: h });
    const frame = new ImageData(w, h);
    frame.data.set(picture);
    /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d")).putImageData(frame, 0, 0);
    canvas.hidden = false;
    shown = true;
    stats.painted += 1;
    stats.changes += canvas.dataset.mask === made.labelsHash ? 0 : 1;
    canvas.dataset.mask = made.labelsHash;  // what a benchmark's reader sees change (benchmarks/bench_dashboard.py)
    stats.hashes.add(made.labelsHash);
    stats.distinct = stats.hashes.size;
    const labels = /** @type {Uint8Array} */ (labelsOfRuns(made.labels, made.n));
    stats.labels = labels;
    const line = part.truth ? truthLine(part.grid, part.truth, part.truthIndex, part.truthMaps, values, labels) : null;
    stats.line = line === null ? HELD_LINE : line;
    hooks.painted(made.attention, stats.line);
  }

  function hide() { canvas.hidden = true; shown = false; wanted = null; epoch += 1; }  // a decode running: dropped

  /** Whether the mask shown is the page's picture (`labels`: the labels hash of a frame of the offer's image): then
   * it stays rather than being painted again (same pixels up to the JPEG's rounding; the Dice line the same). */
  function keeps(labels) {
    const same = Boolean(shown && labels && offer && drawn.key === offer.key && drawn.labels === labels);
    if (same) stats.kept += 1;
    return same;
  }

  /** What to ask the page for ("KEY#1": the part with the .onnx, "KEY#0" without, "off"), or null: nothing now. */
  function request(now) {
    if (state === "failed") return asked.off ? null : (asked.off = "off");
    if (!pending()) return null;
    const text = asking(), last = asked[text] || { at: -Infinity, tries: 0 };
    if (now - last.at < (/** @type {DecoderOffer} */ (offer).ready ? 4000 : DECODER_ASK_MS)) return null;
    asked[text] = { at: now, tries: last.tries + 1 };
    return text;
  }

  function asking() {
    const { key, model } = /** @type {DecoderOffer} */ (offer);
    return key + (modelIn === model || (part && part.model === model) ? "#0" : "#1");
  }

  /** Whether a part is still to be asked for (the page may be exporting the model: asked again a while). */
  function pending() {
    if (!offer || state === "none" || state === "failed" || (part && part.key === offer.key)) return false;
    return (asked[asking()] || { tries: 0 }).tries < (offer.ready ? 2 : 30);
  }

  /** One line: where held values are decoded now. */
  function path(hasFrames) {
    if (loaded()) {
      return "While held: the mask is decoded in this browser (ONNX Runtime Web)" + (part.truth
        ? ", its Dice line written here; the release asks the server for the exact frame."
        : "; the release asks the server for the exact frame and its Dice.");
    }
    if (state === "failed") return "While held: the server's pictures (decoding in this browser failed to start).";
    if (offer) return "While held: the server's pictures, until the decoder for this browser is ready.";
    return hasFrames ? "While held: the server's pictures made ahead." : "";
  }

  function stop() { if (worker) worker.terminate(); state = "none"; worker = null; modelIn = inputsIn = null; }

  return { take, covers, decode, request, pending, path, hide, keeps, stop, stats, showing: () => shown };
}
