// The pure functions of decoding in the browser (app/decode_core.js) under Node's test runner:
//     node --test tests/js/
// The Python side (tests/test_decode_recipe_js.py) checks them against the page's own recipe on a real model.
"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const core = require(path.join(__dirname, "..", "..", "app", "decode_core.js"));
const live = require(path.join(__dirname, "..", "..", "app", "live_controls_core.js"));

test("base64 and float16 bytes come back as the numbers they were", () => {
  assert.deepEqual([...core.bytesOf(Buffer.from([0, 1, 254, 255]).toString("base64"))], [0, 1, 254, 255]);
  // little-endian halves: 1, -2, 0.5, 65504 (the largest), 2^-24 (the smallest subnormal), 0, -inf
  const halves = [0x3c00, 0xc000, 0x3800, 0x7bff, 0x0001, 0x0000, 0xfc00];
  const bytes = new Uint8Array(halves.flatMap((h) => [h & 0xff, h >> 8]));
  assert.deepEqual([...core.halfToFloat(bytes)], [1, -2, 0.5, 65504, 2 ** -24, 0, -Infinity]);
  assert.ok(Number.isNaN(core.halfToFloat(new Uint8Array([0x01, 0x7c]))[0]));
  const four = new Uint8Array(new Float32Array([1.5, -3]).buffer);
  assert.deepEqual([...core.floats(four.subarray(0))], [1.5, -3]);
});

test("z comes from the grid only for values on it, with the other controls where the grid was made", () => {
  // a 3 x 2 grid (x: -1, 0, 1; y: 0, 0.5), z = (x, y, 10 x + y)
  const grid = { x: "loc_x", y: "loc_y", xs: [-1, 1, 3, 0], ys: [0, 0.5, 2, 1], dim: 3, base: { radius: 0.35 },
                 data: "" };
  const table = new Float32Array(18);
  [0, 0.5].forEach((y, j) => [-1, 0, 1].forEach((x, i) => table.set([x, y, 10 * x + y], (j * 3 + i) * 3)));
  assert.deepEqual([...core.zAt(grid, table, { loc_x: 0, loc_y: 0.5, radius: 0.35 })], [0, 0.5, 0.5]);
  assert.deepEqual([...core.zAt(grid, table, { loc_x: 1, loc_y: 0, radius: 0.35 })], [1, 0, 10]);
  assert.equal(core.zAt(grid, table, { loc_x: 0.5, loc_y: 0, radius: 0.35 }), null);  // off the grid
  assert.equal(core.zAt(grid, table, { loc_x: 2, loc_y: 0, radius: 0.35 }), null);  // past its end
  assert.equal(core.zAt(grid, table, { loc_x: 0, loc_y: 0, radius: 0.4 }), null);  // another radius: not this grid
  assert.equal(core.gridIndex([-1, 0.05, 41, 2], 0.35), 27);
});

test("labels: sigmoid > 0.5 for one class, the arg-max for several, probabilities that sum to 1", () => {
  const one = core.labelsFromLogits(new Float32Array([-1, 0.5, 0, 3]), 1, 2, 2, []);
  assert.deepEqual([...one.labels], [0, 1, 0, 1]);
  assert.ok(Math.abs(one.probabilities[1] - 1 / (1 + Math.exp(-0.5))) < 1e-6);
  // K = 3 over 1 x 2 pixels, class-major: pixel 0 is class 2, pixel 1 class 0
  const three = core.labelsFromLogits(new Float32Array([0, 5, 1, 2, 3, -1]), 3, 1, 2, []);
  assert.deepEqual([...three.labels], [2, 0]);
  const sum = three.probabilities[0] + three.probabilities[2] + three.probabilities[4];
  assert.ok(Math.abs(sum - 1) < 1e-6);
});

test("the card's clean-up: only the largest face-connected piece of a listed label stays", () => {
  // 4 x 5: label 1 has a piece of 4 and, diagonal to it (not face-connected), pieces of 1 and 2; label 2 is not listed
  const labels = [1, 1, 0, 0, 2,
                  1, 1, 0, 2, 0,
                  0, 0, 1, 0, 0,
                  0, 0, 0, 1, 1];
  const logits = new Float32Array(labels.flatMap((l) => [0, 1, 2].map((c) => (c === l ? 5 : 0))));
  const byClass = new Float32Array(60);  // class-major
  for (let i = 0; i < 20; i += 1) for (let c = 0; c < 3; c += 1) byClass[c * 20 + i] = logits[i * 3 + c];
  const { labels: kept, probabilities } = core.labelsFromLogits(byClass, 3, 4, 5, [1]);
  assert.deepEqual([...kept], [1, 1, 0, 0, 2, 1, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.equal(probabilities[12], 1);  // a removed pixel: background for sure, as the Explorer says
  assert.equal(probabilities[20 + 12], 0);
  assert.deepEqual(core.smallerPieces(new Uint8Array([1, 0, 1]), 1, 3, 1), [2]);  // a tie: the first piece stays
});

test("smooth labels: bilinear with half-pixel centres, as torch's interpolate(align_corners=False)", () => {
  // one class, 1 x 2 probabilities (0.2, 0.9) -> 1 x 4: sources -0.25 (clamped 0), 0.25, 0.75, 1.25 (clamped)
  const p = new Float32Array([0.2, 0.9]);
  assert.deepEqual([...core.smoothLabels(p, 1, 1, 2, 1, 4)], [0, 0, 1, 1]);  // 0.2, 0.375, 0.725, 0.9
  // the same size: the labels themselves; two classes pick the larger
  const two = new Float32Array([0.7, 0.4, 0.3, 0.6]);
  assert.deepEqual([...core.smoothLabels(two, 2, 1, 2, 1, 2)], [0, 1]);
});

test("the picture: labelled pixels blended, each label's edge in its colour, the rest untouched", () => {
  const base = new Uint8ClampedArray(5 * 5 * 4).fill(100);
  const labels = new Uint8Array(25);
  for (const i of [6, 7, 8, 11, 12, 13, 16, 17, 18]) labels[i] = 1;  // a 3 x 3 square in the middle
  const out = core.paint(base, labels, 5, 5, { 1: [255, 0, 0] }, 0.45);
  assert.deepEqual([...out.slice(4 * 12, 4 * 12 + 4)], [170, 55, 55, 100]);  // inside: round(0.55 x 100 + 0.45 x c)
  assert.deepEqual([...out.slice(4 * 6, 4 * 6 + 3)], [255, 0, 0]);  // the edge
  assert.deepEqual([...out.slice(0, 4)], [100, 100, 100, 100]);  // background
  const edge = new Uint8Array(25).fill(1);  // a label touching the image's border: its border pixels are edge
  assert.deepEqual([...core.paint(base, edge, 5, 5, { 1: [0, 0, 255] }, 0.45).slice(0, 3)], [0, 0, 255]);
});

test("Gaussians in the model grid's pixels, as app/frame.gaussians: only the drawn channels", () => {
  const outputs = { mu_x0: new Float32Array([0, -1, 1]), mu_y0: new Float32Array([0.5, 0, 0]),
                    sigma_x0: new Float32Array([0.1, 0.2, 0.3]), sigma_y0: new Float32Array([0.2, 0.2, 0.2]),
                    gamma0: new Float32Array([-0.5, 1, 2]) };
  assert.deepEqual(core.gaussians(outputs, 0, [0, 2], 96, 96), [[47.5, 95.5], [71.5, 47.5], [4.8, 14.4],
                                                                   [9.6, 9.6], [-0.5, 2], null]);
  assert.equal(core.gaussians(outputs, 0, null, 96, 96), null);
  assert.equal(core.gaussians(outputs, 1, [0], 96, 96), null);  // no such layer
});

test("a request for the decoder's part travels with the value and waits as long as pictures do", () => {
  const sent = [], timers = [];
  const flow = new live.Flow({ post: (m) => sent.push(m), now: () => 0, later: (fn, ms) => timers.push(ms), session: "s" });
  flow.propose({ loc_x: 0 }, true, null, "K#1");
  assert.equal(sent[0].decoder, "K#1");
  assert.equal(sent[0].frames, null);
  assert.equal(timers[0], live.FRAMES_TIMEOUT_MS + 20);
  flow.answer("s:1");
  flow.propose({ loc_x: 0.1 }, true);
  assert.equal("decoder" in sent[1], false);  // a plain value has no such field
});

test("labels as runs come back the same, in far fewer numbers for a mask of a few objects", () => {
  const labels = new Uint8Array(400 * 400);
  for (let r = 100; r < 160; r += 1) labels.fill(1, r * 400 + 50, r * 400 + 120);  // a square of label 1
  for (let r = 300; r < 310; r += 1) labels.fill(3, r * 400 + 200, r * 400 + 205);  // a small one of label 3
  labels[0] = 2;  // a run at the very start, and one running to the end
  labels.fill(1, labels.length - 7);
  const runs = core.runsOf(labels);
  assert.deepEqual(core.labelsOfRuns(runs, labels.length), labels);
  assert.ok(runs.length < 400, `${runs.length} numbers`);
  assert.deepEqual([...core.runsOf(Uint8Array.from([0, 0, 1, 1, 1, 2]))], [0, 2, 1, 3, 2, 1]);  // app/scrub.run_lengths'
  assert.deepEqual([...core.runsOf(new Uint8Array(9))], [0, 9]);  // all background: one run
});

test("the grid is decoded ahead from the point: its two slider lines first, then outwards, every cell once", () => {
  const order = core.aheadOrder(5, 4, 1, 2);
  assert.equal(order.length, 20);
  assert.equal(new Set(order.map(String)).size, 20);
  assert.deepEqual(order[0], [1, 2]);  // the point itself
  const lines = order.slice(0, 5 + 4 - 1);  // its row and its column
  assert.ok(lines.every(([a, b]) => a === 1 || b === 2), JSON.stringify(lines));
  assert.deepEqual(lines.slice(1, 5).map(([a, b]) => Math.abs(a - 1) + Math.abs(b - 2)), [1, 1, 1, 1]);
  const rest = order.slice(8).map(([a, b]) => Math.max(Math.abs(a - 1), Math.abs(b - 2)));
  assert.deepEqual(rest, [...rest].sort((p, q) => p - q));  // then by how far
});

test("the truth's runs, each grid value's map, and the line under a decoded mask", () => {
  assert.deepEqual([...core.labelsOfRuns([0, 2, 1, 3, 2, 1], 6)], [0, 0, 1, 1, 1, 2]);
  assert.equal(core.labelsOfRuns([0, 2, 1, 3], 6), null);  // short of the map
  assert.equal(core.labelsOfRuns([0, 4, 1, 3], 6), null);  // past it
  // a 2 x 2 grid (x: 0, 1; y: 0, 1): value (0, 0) map 0, (1, 0) map 1, (0, 1) none, (1, 1) map 0
  const grid = { x: "loc_x", y: "loc_y", xs: [0, 1, 2, 0], ys: [0, 1, 2, 0], dim: 1, base: {}, data: "" };
  const index = Uint8Array.from([0, 1, 255, 0]);
  assert.equal(core.truthIndex(grid, index, { loc_x: 1, loc_y: 0 }), 1);
  assert.equal(core.truthIndex(grid, index, { loc_x: 0.5, loc_y: 0 }), -1);  // off the grid
  const truth = { index: "", maps: [], labels: [1], names: ["target"], lead: "Dice: ", empty: " (empty)",
                  none: "No ground truth." };
  const maps = [Uint8Array.from([1, 1, 0, 0]), Uint8Array.from([0, 0, 0, 0])];
  const labels = Uint8Array.from([1, 0, 0, 0]);
  assert.equal(core.truthLine(grid, truth, index, maps, { loc_x: 0, loc_y: 0 }, labels), "Dice: **0.667**");
  // an empty truth: 0 with anything predicted, 1 with nothing, and the words say why
  assert.equal(core.truthLine(grid, truth, index, maps, { loc_x: 1, loc_y: 0 }, labels), "Dice: **0.000** (empty)");
  assert.equal(core.truthLine(grid, truth, index, maps, { loc_x: 1, loc_y: 0 }, new Uint8Array(4)),
               "Dice: **1.000** (empty)");
  assert.equal(core.truthLine(grid, truth, index, maps, { loc_x: 0, loc_y: 1 }, labels), "No ground truth.");
  assert.equal(core.truthLine(grid, truth, index, [null, null], { loc_x: 0, loc_y: 0 }, labels), null);  // bad runs
  // several labels: each named, the mean in bold; a label in neither map scores 1
  const several = Object.assign({}, truth, { labels: [1, 2, 3], names: ["RV", "MYO", "LV"] });
  assert.equal(core.diceLine(Uint8Array.from([1, 2, 2, 0]), Uint8Array.from([1, 2, 0, 0]), several),
               "Dice: **0.889** (RV 1.00, MYO 0.67, LV 1.00)");
  assert.deepEqual(core.dicePerLabel(Uint8Array.from([1, 1]), Uint8Array.from([0, 1]), [1, 2]), [2 / 3, 1]);
  // Python's rounding: exact ties to even (toFixed would give 0.13 and 0.063)
  assert.deepEqual([core.fixed(0.125, 2), core.fixed(0.375, 2), core.fixed(0.0625, 3), core.fixed(2 / 3, 3)],
                   ["0.12", "0.38", "0.062", "0.667"]);
});
