// The pure functions of app/live_controls_core.js under Node's built-in test runner:
//     node --test tests/js/
// (pytest runs it too: tests/test_js.py). The messages are app/protocol.py's.
"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const core = require(path.join(__dirname, "..", "..", "app", "live_controls_core.js"));

const X = { key: "loc_x", kind: "slider", low: -1, high: 1, step: 0.05, decimals: 2 };
const Y = { key: "loc_y", kind: "slider", low: -1, high: 1, step: 0.05, decimals: 2 };
const PHASE = { key: "phase", kind: "slider", low: 0, high: 1, step: 0.05, decimals: 2 };
const SLICE = { key: "slice", kind: "stack", low: 0, high: 1, step: 1, decimals: 0,
                positions: [[3, 0], [1, 0.25], [4, 0.5], [0, 0.75], [2, 1]] };

test("snap clamps to the range and lands on the step grid", () => {
  assert.equal(core.snap(X, 0.333), 0.35);
  assert.equal(core.snap(X, -7), -1);
  assert.equal(core.snap(X, 1.2), 1);
  assert.equal(core.snap({ ...X, step: 0.025, decimals: 3 }, 0.0126), 0.025);
});

test("a stack's slice sits at its position, and the nearest position picks the slice", () => {
  assert.equal(core.fraction(SLICE, 4), 0.5);
  assert.equal(core.fraction(X, 0), 0.5);
  assert.equal(core.fromFraction(SLICE, 0.3), 1);
  assert.equal(core.fromFraction(SLICE, 0.9), 2);
  assert.equal(core.fromFraction(X, 0.26), -0.5);
  assert.equal(core.nudge(SLICE, 4, 1), 0);
  assert.equal(core.nudge(SLICE, 3, -1), 3);  // the base end stays
  assert.equal(core.nudge(X, 0.95, 1), 1);
});

test("values are shown with a real minus sign, slices with their position", () => {
  assert.equal(core.valueText(X, -0.5), "\u22120.50");
  assert.equal(core.valueText(SLICE, 1), "1 · 0.25");
});

function framesFor(key) {
  const part0 = { key: key, part: 0, parts: 2, x: "loc_x", y: "loc_y", base: { radius: 0.35 },
                  points: [[-1, -1, "a", null, "Dice a"], [1, 1, "b", [[1], [2], [3], [4], [0.5], null], "Dice b"]],
                  strips: { loc_x: { at: { loc_y: 0 }, values: [-1, 0, 1], images: ["s0", "s1", "s2"],
                                     attention: [null, null, null], captions: ["c0", "c1", "c2"] } } };
  return core.keepPart(null, part0).frames;
}

test("the nearest picture: a strip's step when the other control is held there, else the lattice's nearest", () => {
  const frames = framesFor("K");
  const controls = { loc_x: X, loc_y: Y };
  assert.deepEqual(core.nearestFrame(frames, "K", { loc_x: 0.4, loc_y: 0, radius: 0.35 }, controls),
                   { src: "s1", attention: null, caption: "c1", at: false });
  const point = core.nearestFrame(frames, "K", { loc_x: 0.8, loc_y: 0.7, radius: 0.35 }, controls);
  assert.equal(point.src, "b");
  assert.equal(point.caption, "Dice b");
  assert.deepEqual(point.attention[0], [1]);
  assert.equal(core.nearestFrame(frames, "other", { loc_x: 0.8, loc_y: 0.7, radius: 0.35 }, controls), null);
  assert.equal(core.nearestFrame(frames, "K", { loc_x: 0.8, loc_y: 0.7, radius: 0.5 }, controls), null);  // another radius
  assert.equal(core.nearestFrame(null, "K", { loc_x: 0 }, controls), null);
});

test("a stack's slice must match: each slice is another image", () => {
  const frames = core.keepPart(null, { key: "A", part: 0, parts: 1, x: "phase", y: "slice", base: {},
                                       points: [[0, 3, "ed3"], [1, 3, "es3"], [0, 4, "ed4"]] }).frames;
  const controls = { phase: PHASE, slice: SLICE };
  assert.equal(core.nearestFrame(frames, "A", { phase: 0.9, slice: 3 }, controls).src, "es3");
  assert.equal(core.nearestFrame(frames, "A", { phase: 0.9, slice: 4 }, controls).src, "ed4");
  assert.equal(core.nearestFrame(frames, "A", { phase: 0.9, slice: 0 }, controls), null);
});

test("on a lattice of every value, only a picture made for the values covers them (the others go to the page)", () => {
  const controls = { phase: PHASE, slice: SLICE };
  for (const exact of [true, false]) {
    const frames = core.keepPart(null, { key: "A", part: 0, parts: 2, x: "phase", y: "slice", base: {}, exact: exact,
                                         points: [[0, 3, "ed3"], [1, 3, "es3"]] }).frames;
    const at = core.nearestFrame(frames, "A", { phase: 1, slice: 3 }, controls);
    const near = core.nearestFrame(frames, "A", { phase: 0.9, slice: 3 }, controls);
    assert.equal(at.at, true);
    assert.equal(near.at, false);
    assert.equal(near.src, "es3");  // still the picture to show meanwhile
    assert.equal(core.covers(frames, at), true);
    assert.equal(core.covers(frames, near), !exact);  // the lattice of every value: ask the page for 0.9
  }
  assert.equal(core.covers(null, null), false);
});

test("parts are kept once each, asked for in order, and a new key starts afresh", () => {
  let frames = framesFor("K");
  assert.equal(core.nextPart(frames, "K", 2), "K#1");
  const again = core.keepPart(frames, { key: "K", part: 0, parts: 2, x: "loc_x", y: "loc_y", base: {}, points: [] });
  assert.equal(again.added, false);
  frames = core.keepPart(frames, { key: "K", part: 1, parts: 2, x: "loc_x", y: "loc_y", base: { radius: 0.35 },
                                   points: [[0, 0, "c"]] }).frames;
  assert.equal(frames.points.length, 3);
  assert.equal(core.nextPart(frames, "K", 2), null);
  assert.equal(core.nextPart(frames, "L", 1), "L#0");
  assert.equal(core.nextPart(frames, null, 3), null);
  assert.equal(core.keepPart(frames, { key: "L", part: 0, parts: 1, x: "loc_x", y: "loc_y", base: {},
                                       points: [] }).frames.points.length, 0);
});

test("ellipses: one polyline per channel, closed, NaN between channels", () => {
  const [xs, ys] = core.ellipses([10, 20], [5, 5], [2, 3], [1, 1], 25);
  assert.equal(xs.length, 2 * 26);
  assert.ok(Number.isNaN(xs[25]) && Number.isNaN(ys[51]));
  assert.ok(Math.abs(xs[0] - 12) < 1e-9 && Math.abs(xs[24] - 12) < 1e-9);  // starts and ends at cx + rx
  assert.ok(Math.abs(Math.min(...xs.slice(26, 51)) - 17) < 1e-9);
});

test("path data: one subpath per run of numbers, NaN lifts the pen", () => {
  assert.equal(core.pathData([0, 1.5, NaN, 3], [0, 2, NaN, 4.125]), "M0.00 0.00L1.50 2.00M3.00 4.13");
  assert.equal(core.pathData([], []), "");
  const [xs, ys] = core.ellipses([10], [5], [2], [1], 5);
  assert.equal(core.pathData(xs, ys).split("M").length - 1, 1);  // one closed ring, one subpath
  assert.equal(core.pathData(xs, ys).split("L").length - 1, 4);
});

test("the overlay's shapes: the frame's rings, its means with gamma's sign, where z points", () => {
  assert.equal(core.overlayShapes(null), null);
  const frame = [[10, 20], [5, 6], [2, 3], [1, 1], [0.4, -0.2], [30, 40, null, null]];
  const shapes = core.overlayShapes(frame);
  assert.deepEqual(shapes.means, [{ x: 10, y: 5, positive: true }, { x: 20, y: 6, positive: false }]);
  const [xs, ys] = core.ellipses([10, 20], [5, 6], [2, 3], [1, 1], 25);
  assert.equal(shapes.rings, core.pathData(xs, ys));  // the one ellipse formula, drawn as a path
  assert.equal(shapes.rings.split("M").length - 1, 2);  // a ring per channel
  assert.ok(shapes.rings.startsWith("M12.00 5.00"));  // each starts at (cx + rx, cy)
  assert.deepEqual(shapes.query, { x: 30, y: 40 });
  assert.equal(shapes.ring, null);  // no radius: no ring
  const ringed = core.overlayShapes([[1], [1], [1], [1], [0], [30, 40, 8, 4]]);
  assert.ok(ringed.ring.startsWith("M38.00 40.00") && ringed.ring.split("L").length - 1 === 63);
  assert.equal(core.overlayShapes([[1], [1], [1], [1], [0], null]).query, null);
});

// ------------------------------------------------------------------------------------ flow control
function flowWith(options = {}) {
  const clock = { t: 0, timers: [] };
  const sent = [];
  const flow = new core.Flow({
    post: (message) => sent.push(message), now: () => clock.t,
    later: (fn, ms) => clock.timers.push({ at: clock.t + ms, fn }), session: "s", ...options,
  });
  const advance = (ms) => {
    clock.t += ms;
    const due = clock.timers.filter((timer) => timer.at <= clock.t);
    clock.timers = clock.timers.filter((timer) => timer.at > clock.t);
    for (const timer of due) timer.fn();
  };
  return { flow, sent, advance };
}

test("one value in flight: the next leaves when the page answers", () => {
  const { flow, sent } = flowWith();
  flow.propose({ loc_x: 0.1 }, false);
  flow.propose({ loc_x: 0.2 }, false);
  assert.equal(sent.length, 1);
  assert.deepEqual(sent[0], { token: "s:1", seq: 1, values: { loc_x: 0.1 }, final: false, frames: null });
  assert.equal(flow.answer("s:0"), null);  // not the token in flight: nothing is freed
  assert.equal(sent.length, 1);
  assert.notEqual(flow.answer("s:1"), null);
  flow.send();
  assert.equal(sent.length, 2);
  assert.deepEqual(sent[1].values, { loc_x: 0.2 });
});

test("the newest wins: stale values are dropped, nothing queues", () => {
  const { flow, sent } = flowWith();
  flow.propose({ loc_x: 0.1 }, false);
  for (const v of [0.2, 0.3, 0.4]) flow.propose({ loc_x: v }, false);
  flow.answer("s:1");
  flow.send();
  assert.deepEqual(sent.map((m) => m.values.loc_x), [0.1, 0.4]);
  flow.answer("s:2");
  flow.send();
  assert.equal(sent.length, 2);  // nothing was queued behind
});

test("the release's exact value leaves at once, even with one in flight", () => {
  const { flow, sent } = flowWith();
  flow.propose({ loc_x: 0.1 }, false);
  flow.propose({ loc_x: 0.37 }, true);
  assert.equal(sent.length, 2);
  assert.deepEqual(sent[1], { token: "s:2", seq: 2, values: { loc_x: 0.37 }, final: true, frames: null });
});

test("an unchanged value is not sent again, and the page's own values are not sent back", () => {
  const { flow, sent } = flowWith();
  flow.adopt({ loc_x: -0.5 });
  flow.propose({ loc_x: -0.5 }, true);
  assert.equal(sent.length, 0);
  flow.propose({ loc_x: -0.45 }, true);
  flow.answer("s:1");
  flow.propose({ loc_x: -0.45 }, true);
  assert.equal(sent.length, 1);
});

test("an answer that never comes frees the next value after the timeout", () => {
  const { flow, sent, advance } = flowWith();
  flow.propose({ loc_x: 0.1 }, false);
  flow.propose({ loc_x: 0.2 }, false);
  advance(core.ACK_TIMEOUT_MS - 10);
  assert.equal(sent.length, 1);
  advance(40);
  assert.equal(sent.length, 2);
});

test("while a picture made ahead covers the pointer, exact answers are asked at most every gap", () => {
  let held = true;
  const { flow, sent, advance } = flowWith({ held: () => held, covered: () => true });
  flow.propose({ loc_x: 0.1 }, false);
  flow.answer("s:1");
  flow.propose({ loc_x: 0.2 }, false);
  assert.equal(sent.length, 1);  // answered just now: the picture made ahead shows 0.2
  advance(core.SCRUB_GAP_MS / 2);
  flow.propose({ loc_x: 0.3 }, false);
  assert.equal(sent.length, 1);
  advance(core.SCRUB_GAP_MS);
  assert.deepEqual(sent.map((m) => m.values.loc_x), [0.1, 0.3]);  // the newest, once the gap passed
  flow.answer("s:2");
  held = false;
  flow.propose({ loc_x: 0.35 }, true);  // released: at once
  assert.equal(sent.length, 3);
});

test("held on a value the page's own frame already shows, nothing is sent; a value without one is", () => {
  let held = true;
  const exact = (values) => values.phase !== 0.5;  // every value has its frame but 0.5
  const { flow, sent, advance } = flowWith({ held: () => held, covered: exact, exact: exact });
  flow.propose({ phase: 0.1 }, false);
  advance(core.SCRUB_GAP_MS * 3);
  assert.equal(sent.length, 0);  // shown exactly: not even every gap
  flow.propose({ phase: 0.5 }, false);
  assert.deepEqual(sent.map((m) => m.values.phase), [0.5]);
  flow.answer("s:1");
  flow.propose({ phase: 0, slice: 2 }, true, "K#1");  // a request for a part still goes (as the component asks)
  assert.equal(sent.length, 2);
  flow.answer("s:2");
  held = false;
  flow.propose({ phase: 0.2 }, true);  // the release's final value too
  assert.deepEqual(sent.map((m) => m.final), [false, true, true]);
});

test("a request for pictures carries its part and waits longer for its answer", () => {
  const { flow, sent, advance } = flowWith();
  flow.propose({ loc_x: 0 }, true, "K#0");
  assert.equal(sent[0].frames, "K#0");
  flow.propose({ loc_x: 0.1 }, false);
  advance(core.ACK_TIMEOUT_MS + 100);
  assert.equal(sent.length, 1);  // the pictures take longer to make than a value to answer
  advance(core.FRAMES_TIMEOUT_MS);
  assert.equal(sent.length, 2);
});

test("after a final value's exact frame, the request for the rest of the area leaves, once, and a newer value wins", () => {
  const { flow, sent } = flowWith();
  flow.propose({ loc_x: 0.37 }, true);
  flow.answer("s:1");
  flow.adopt({ loc_x: 0.37 });  // the page's answer shows the values: the same final value is not sent again ...
  flow.propose({ loc_x: 0.37 }, true);
  assert.equal(sent.length, 1);
  flow.propose({ loc_x: 0.37 }, true, null, null, true);  // ... but the area's request for them is
  assert.deepEqual(sent[1], { token: "s:2", seq: 2, values: { loc_x: 0.37 }, final: true, frames: null, area: true });
  flow.answer("s:2");
  flow.propose({ loc_x: 0.37 }, true, null, null, true);  // not twice for the same values
  assert.equal(sent.length, 2);
  flow.propose({ loc_x: 0.5 }, false);  // held again: a plain value, no area request
  assert.equal(sent[2].area, undefined);
});

test("parts are asked for only once made by the page; the first not made yet is a poll", () => {
  const tries = {};
  const kept = { key: "K", got: [0] };
  assert.deepEqual(core.askPart(kept, "K", 4, 2, tries, 2), { request: "K#1", poll: false });
  assert.deepEqual(core.askPart(kept, "K", 4, 2, tries, 2), { request: "K#1", poll: false });  // asked again once
  assert.equal(core.askPart(kept, "K", 4, 2, tries, 2), null);  // then no more: it failed
  assert.deepEqual(core.askPart({ key: "K", got: [0, 1] }, "K", 4, 2, tries, 2), { request: "K#2", poll: true });
  assert.deepEqual(core.askPart({ key: "K", got: [0, 1] }, "K", 4, 2, tries, 2), { request: "K#2", poll: true });
  assert.equal(tries["K#2"], undefined);  // a poll is not a try
  assert.equal(core.askPart({ key: "K", got: [0, 1, 2, 3] }, "K", 4, 4, tries, 2), null);  // all kept
  assert.deepEqual(core.askPart(null, "K", 4, 4, {}, 2), { request: "K#0", poll: false });  // all made (in the run)
  assert.equal(core.askPart(null, null, 4, 4, {}, 2), null);
});
