// The pure part of the streaming controls (app/live_controls.js, app/live_overlay.js): values <-> positions
// on a control, the nearest picture made ahead, the pictures' parts, the Gaussians drawn over the picture,
// and the flow control of the values sent. No DOM here: the same file runs in the browser (`LiveCore`: the
// head of the controls' module) and under Node's test runner (`node --test tests/js/`).
//
// The messages are app/protocol.py's, typed in app/protocol.js.
/**
 * @import {ControlSpec, Gaussians, Strip, FramePoint, FramesPart, ValueMessage} from "./protocol.js"
 * @typedef {{rings: string, means: Array<{x: number, y: number, positive: boolean}>,
 *            query: ({x: number, y: number}|null), ring: (string|null)}} OverlayShapes  what the overlay draws
 * @typedef {{key: string, parts: number, x: string, y: string, base: Object<string, number>, points: FramePoint[],
 *            strips: Object<string, Strip>, got: number[], exact?: boolean}} Frames  the parts kept so far
 * @typedef {{src: string, attention: (Gaussians|null), caption: (string|null), at: boolean}} Frame  what a picture
 *            shows; `at`: made for exactly these values
 */
const LiveCore = (function () {
  "use strict";
  const SCRUB_GAP_MS = 200;  // while scrubbing, the page's exact answer at most this often (app/protocol.py)
  const ACK_TIMEOUT_MS = 1500;  // an answer that never comes (a failed run) frees the next value after this
  const FRAMES_TIMEOUT_MS = 8000;  // the same for a request of pictures (~0.3-1.5 s to make here)

  // ---------------------------------------------------------------------------- values <-> positions
  /** A slider's number clamped to its range, on its step grid. @param {ControlSpec} c @param {number} value */
  function snap(c, value) {
    const v = Math.min(c.high, Math.max(c.low, value));
    const n = Math.round((v - c.low) / c.step);
    return parseFloat(Math.min(c.high, c.low + n * c.step).toFixed(c.decimals));
  }

  /** Where a value sits along its control, 0..1 (a stack's slice: at its position). */
  function fraction(c, value) {
    if (c.kind === "stack") {
      const entry = c.positions.find((p) => p[0] === value);
      return ((entry ? entry[1] : c.low) - c.low) / (c.high - c.low || 1);
    }
    return (value - c.low) / (c.high - c.low || 1);
  }

  /** The control's value nearest to fraction f (a stack: the slice whose position is nearest). */
  function fromFraction(c, f) {
    if (c.kind === "stack") {
      const position = c.low + f * (c.high - c.low);
      let best = c.positions[0];
      for (const p of c.positions) if (Math.abs(p[1] - position) < Math.abs(best[1] - position)) best = p;
      return best[0];
    }
    return snap(c, c.low + f * (c.high - c.low));
  }

  /** The value as the control shows it ("−0.50"; a slice: "3 · 0.25"). */
  function valueText(c, value) {
    if (c.kind === "stack") {
      const entry = c.positions.find((p) => p[0] === value);
      return entry ? value + " · " + entry[1].toFixed(2) : String(value);
    }
    return value.toFixed(c.decimals).replace("-", "\u2212");
  }

  /** One step (+1 / -1) along a control: the next slice of a stack, a step of a slider. */
  function nudge(c, value, delta) {
    if (c.kind === "stack") {
      const rank = c.positions.findIndex((p) => p[0] === value);
      return c.positions[Math.min(c.positions.length - 1, Math.max(0, rank + delta))][0];
    }
    return snap(c, value + delta * c.step);
  }

  // ---------------------------------------------------------------------------- pictures made ahead
  /**
   * The picture made nearest to `values`, if made for the page's state (`key`), else null: on a strip
   * when the other control is where the strip holds it (every slider step), else the lattice's nearest
   * point (a stack's slice must match: each slice is another image).
   * @param {Frames|null} frames @param {string|null} key @param {Object<string, number>} values
   * @param {Object<string, ControlSpec>} controls @returns {Frame|null}
   */
  function nearestFrame(frames, key, values, controls) {
    if (!frames || frames.key !== key) return null;
    for (const [name, value] of Object.entries(frames.base)) if (values[name] !== value) return null;
    const nearest = (grid, v) => grid.reduce((best, g, i) => (Math.abs(g - v) < Math.abs(grid[best] - v) ? i : best), 0);
    for (const [name, strip] of Object.entries(frames.strips || {})) {
      const [other, at] = Object.entries(strip.at)[0];
      if (values[other] === at) {
        const k = nearest(strip.values, values[name]);
        return { src: strip.images[k], attention: strip.attention ? strip.attention[k] : null,
                 caption: strip.captions ? strip.captions[k] : null, at: strip.values[k] === values[name] };
      }
    }
    const cx = controls[frames.x], cy = controls[frames.y];
    if (!cx || !cy) return null;
    const fx = fraction(cx, values[frames.x]), fy = fraction(cy, values[frames.y]);
    let best = null, distance = Infinity;
    for (const point of frames.points) {
      const [x, y] = point;
      if (cy.kind === "stack" && y !== values[frames.y]) continue;
      const d = Math.hypot(fraction(cx, x) - fx, fraction(cy, y) - fy);
      if (d < distance) { distance = d; best = point; }
    }
    return best ? { src: best[2], attention: best[3] || null, caption: best[4] ?? null, at: distance < 1e-9 } : null;
  }

  /** Whether `frame` (nearestFrame's) stands for the values it was found for: on a lattice that holds every value
   * (`exact`, ACDC's) only a picture made for them does, and the others are asked of the page at its pace.
   * @param {Frames|null} frames @param {Frame|null} frame @returns {boolean} */
  function covers(frames, frame) {
    return Boolean(frames && frame) && (/** @type {Frame} */ (frame).at || !(/** @type {Frames} */ (frames).exact));
  }

  /** The kept pictures with `part` added (a part already kept, or another key's, as the page sent them).
   * @param {Frames|null} frames @param {FramesPart} part @returns {{frames: Frames, added: boolean}} */
  function keepPart(frames, part) {
    if (frames && frames.key === part.key && frames.got.includes(part.part)) return { frames: frames, added: false };
    /** @type {Frames} */
    const kept = frames && frames.key === part.key ? frames
      : { key: part.key, parts: part.parts, x: part.x, y: part.y, base: part.base, points: [], strips: {}, got: [] };
    Object.assign(kept, { parts: part.parts, x: part.x, y: part.y, base: part.base, exact: Boolean(part.exact) });
    kept.points = kept.points.concat(part.points);
    Object.assign(kept.strips, part.strips || {});
    kept.got.push(part.part);
    return { frames: kept, added: true };
  }

  /** "KEY#PART" of the first part not kept yet (protocol.frames_request), or null when all are. */
  function nextPart(frames, key, parts) {
    if (!key) return null;
    const got = frames && frames.key === key ? frames.got : [];
    for (let part = 0; part < parts; part += 1) if (!got.includes(part)) return key + "#" + part;
    return null;
  }

  /**
   * What to ask the page for next: the first part not kept of those it has made (`ready`), each at most `most`
   * times (counted in `tries`), or, when all made ones are kept, the first not made yet as a `poll` (the page
   * answers at once, with how many are made now); null when there is nothing to ask.
   * @param {Object<string, number>} tries @returns {{request: string, poll: boolean}|null}
   */
  function askPart(frames, key, parts, ready, tries, most) {
    const made = nextPart(frames, key, Math.min(parts, ready));
    if (made) return (tries[made] = (tries[made] || 0) + 1) <= most ? { request: made, poll: false } : null;
    const next = ready < parts ? nextPart(frames, key, ready + 1) : null;
    return next ? { request: next, poll: true } : null;
  }

  /** Axis-aligned ellipses as one polyline with NaN gaps (as app/plots.ellipse_path). */
  function ellipses(cx, cy, rx, ry, points) {
    const xs = [], ys = [];
    for (let c = 0; c < cx.length; c += 1) {
      for (let k = 0; k < points; k += 1) {
        const angle = 2 * Math.PI * k / (points - 1);
        xs.push(cx[c] + rx[c] * Math.cos(angle));
        ys.push(cy[c] + ry[c] * Math.sin(angle));
      }
      xs.push(NaN);
      ys.push(NaN);
    }
    return [xs, ys];
  }

  /** SVG path data of a polyline with NaN gaps (each run of numbers a subpath), 2 decimals. */
  function pathData(xs, ys) {
    let d = "", pen = false;
    for (let k = 0; k < xs.length; k += 1) {
      if (Number.isNaN(xs[k]) || Number.isNaN(ys[k])) { pen = false; continue; }
      d += (pen ? "L" : "M") + xs[k].toFixed(2) + " " + ys[k].toFixed(2);
      pen = true;
    }
    return d;
  }

  /**
   * What the overlay draws over the picture for a frame's Gaussians, in the grid's pixels: the 1-sigma
   * rings as one path, each mean with the sign of its gamma, and where z points (its ring, if it has one).
   * @param {Gaussians|null} attention @returns {OverlayShapes|null}
   */
  function overlayShapes(attention) {
    if (!attention) return null;
    const [cx, cy, rx, ry, gamma, marker] = attention;
    const ring = marker && marker[2] !== null && marker[3] !== null
      ? pathData(...ellipses([marker[0]], [marker[1]], [marker[2]], [marker[3]], 64)) : null;
    return { rings: pathData(...ellipses(cx, cy, rx, ry, 25)),
             means: cx.map((x, k) => ({ x: x, y: cy[k], positive: gamma[k] >= 0 })),
             query: marker ? { x: marker[0], y: marker[1] } : null, ring: ring };
  }

  // ---------------------------------------------------------------------------- flow control
  /**
   * The values sent to the page: at most one in flight; a move while one is in flight replaces the pending
   * one (the newest wins, stale ones are dropped, nothing queues); the answer (a render whose `ack` is the
   * token in flight) releases the next; the release's final value leaves at once; while the pointer is held
   * on values a picture made ahead already shows (`covered`), exact answers are asked at most every gap.
   * `post(message)` sends a ValueMessage; `now()` and `later(fn, ms)` are the clock (injected for tests).
   */
  class Flow {
    /**
     * @param {{post: (message: ValueMessage) => void, now: () => number,
     *          later: (fn: () => void, ms: number) => unknown, held?: () => boolean,
     *          covered?: (values: Object<string, number>) => boolean,
     *          exact?: (values: Object<string, number>) => boolean, session?: string}} clock  `exact`: a picture
     *          shows them that is the page's own frame for them (ACDC's lattice): held, they are not sent at all
     */
    constructor({ post, now, later, held = () => false, covered = () => false, exact = () => false, session = "s" }) {
      this.post = post;
      this.now = now;
      this.later = later;
      this.held = held;
      this.covered = covered;
      this.exact = exact;
      this.session = session;
      this.seq = 0;
      /** @type {string|null} */
      this.inFlight = null;  // the token the page has not answered yet
      this.inFlightAt = 0;
      this.patience = ACK_TIMEOUT_MS;
      this.answeredAt = -Infinity;
      /** @type {{values: Object<string, number>, final: boolean, frames: (string|null), decoder: (string|null),
       *          area: boolean}|null} */
      this.pending = null;  // the newest not sent yet
      /** @type {string|null} */
      this.lastSent = null;  // JSON of the last value sent (or adopted): an unchanged one is not sent again
      this.gapTimer = false;
      /** @type {number[]} */
      this.trips = [];  // ms per round trip, the last 200
    }

    /** A new value (the newest wins). `frames`: ask for that part of the pictures ("KEY#PART"); `decoder`: for
     * the decoder's part (app/live_decoder.js); `area`: for the rest of the explorer area (after a final value's
     * exact frame came from the controls alone).
     * @param {Object<string, number>} values @param {boolean} final @param {string|null} [frames]
     * @param {string|null} [decoder] @param {boolean} [area] */
    propose(values, final, frames = null, decoder = null, area = false) {
      this.pending = { values: Object.assign({}, values), final: final, frames: frames, decoder: decoder, area: area };
      this.send();
    }

    idle() { return this.inFlight === null && this.pending === null; }

    send() {
      const pending = this.pending;
      if (pending === null) return false;
      const now = this.now();
      if (this.inFlight !== null && !pending.final && now - this.inFlightAt < this.patience) return false;
      const plain = !pending.final && !pending.frames && !pending.decoder && !pending.area;
      if (plain && this.held() && this.exact(pending.values)) { this.pending = null; return false; }  // shown exactly
      const wait = SCRUB_GAP_MS - (now - this.answeredAt);
      if (!pending.final && this.held() && wait > 0 && this.covered(pending.values)) {
        if (!this.gapTimer) {
          this.gapTimer = true;
          this.later(() => { this.gapTimer = false; this.send(); }, wait + 1);
        }
        return false;
      }
      const text = JSON.stringify({ values: pending.values, final: pending.final, frames: pending.frames,
                                    decoder: pending.decoder, ...(pending.area ? { area: true } : {}) });
      if (text === this.lastSent) { this.pending = null; return false; }
      this.seq += 1;
      const token = this.session + ":" + this.seq;
      this.post(Object.assign({ token: token, seq: this.seq, values: pending.values, final: pending.final,
                                frames: pending.frames || null }, pending.decoder ? { decoder: pending.decoder } : {},
                                pending.area ? { area: true } : {}));
      this.inFlight = token;
      this.inFlightAt = now;
      this.patience = pending.frames || pending.decoder ? FRAMES_TIMEOUT_MS : ACK_TIMEOUT_MS;
      this.lastSent = text;
      this.pending = null;
      this.later(() => this.send(), this.patience + 20);  // in case the answer is lost
      return true;
    }

    /** A render came with `ack`: if it answers the value in flight, the next may leave. */
    answer(ack) {
      if (this.inFlight === null || ack !== this.inFlight) return null;
      const trip = Math.round(this.now() - this.inFlightAt);
      this.inFlight = null;
      this.answeredAt = this.now();
      this.trips.push(trip);
      if (this.trips.length > 200) this.trips.shift();
      return trip;
    }

    /** The page's values are shown (after an answer, or a change from elsewhere): not sent back. */
    adopt(values) {
      this.lastSent = JSON.stringify({ values: Object.assign({}, values), final: true, frames: null, decoder: null });
    }
  }

  return { SCRUB_GAP_MS, ACK_TIMEOUT_MS, FRAMES_TIMEOUT_MS, snap, fraction, fromFraction, valueText, nudge,
           nearestFrame, covers, keepPart, nextPart, askPart, ellipses, pathData, overlayShapes, Flow };
})();
if (typeof module === "object" && module.exports) module.exports = LiveCore;  // Node's test runner
