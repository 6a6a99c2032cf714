// The browser side of app/live_controls.py: sliders and a 2-D pad that send their values WHILE dragged. A Streamlit
// Custom Components v2 module (after app/live_controls_core.js, decode_core.js, live_overlay.js, live_decoder.js), in
// the page, no iframe. Streamlit calls the default export with `data` (RenderArgs: app/protocol.py has the messages
// and flow control, app/protocol.js their types) on every render that changes it; a value leaves through
// `setTriggerValue("value", ValueMessage)`. One instance per mounted element (its shadow root). Held, the page's values
// are not adopted (the user's hand wins). Where the page offers its decoder, held values are decoded here
// (app/live_decoder.js) and not sent; elsewhere the nearest picture made ahead (app/scrub.py; asked for when idle)
// shows at once, with its Dice line and Gaussians (`attention`): this component alone paints a drag.
/** @import {PadSpec, RenderArgs, ValueMessage} from "./protocol.js" */
const { fraction, fromFraction, valueText, nudge, snap, nearestFrame, covers, keepPart, askPart, Flow } = LiveCore;
const FRAMES_TRIES = 2;  // a part that did not come (its run was cut short by a move, or failed) is asked again once
const POLL_MS = 600;  // while the page's thread makes the next part (app/ahead.py), how often to ask whether it is
const instances = new WeakMap();  // the component's root (its shadow root) -> its instance

export default function (/** @type {LiveControlsArgs} */ component) {
  const { parentElement, data, setTriggerValue } = component;
  const instance = instances.get(parentElement) || mount(parentElement);
  instances.set(parentElement, instance);
  instance.send = (message) => setTriggerValue("value", message);  // this render's (its fragment's) sender
  instance.render(data || {});
  // Streamlit keeps the newest clean-up and calls it when the element goes (or a superseded render's at
  // once): only an element no longer in the page lets its listeners go
  return () => setTimeout(() => {
    const host = "host" in parentElement ? parentElement.host : parentElement;  // a shadow root's element
    if (host.isConnected || instances.get(parentElement) !== instance) return;
    instance.unmount();
    instances.delete(parentElement);
  }, 0);
}

function mount(shadow) {
  const $ = (id) => shadow.querySelector("#" + id);
  const root = $("root"), sliderBox = $("sliders"), pad = $("pad"), marks = $("marks");
  // the pad is the picture (a point on the image), or the picture is under a plain pad; the Dice line under it
  const padImage = $("image"), picture = $("picture"), caption = $("caption");
  const overlay = gaussianOverlay($("gaussians"), $("key"));  // INSIDE's Gaussians over the picture shown
  let overlaySpec = null;  // the grid and colours of the Gaussians (OverlaySpec), or null: none drawn
  let image = padImage;           // whichever shows the page's picture
  let controls = /** @type {Object<string, Control>} */ ({});  // key -> control spec (from Python), with its widgets
  let specText = null, padSpec = null;  // the spec the widgets were built from; the pad's (PadSpec & {hasImage}) or null
  let local = /** @type {Object<string, number>} */ ({});  // the values shown: the user's while held, else the page's
  let held = false;        // the pointer is down on a slider or on the pad
  let padMode = null;      // "point" or "radius" while the pad is dragged
  let padSize = [0, 0], padBox = null;  // the pad's size (its observer's), its box at the press
  const padMarker = padMarks(marks);  // the point, the ring and a plain pad's grid (app/live_overlay.js)
  // the newest image src asked for (older decodes are dropped), its Gaussians, whether it was made ahead
  let imageWanted = null, attentionWanted = null, aheadWanted = false;
  let frames = null, framesKey = null, framesParts = 0, framesReady = 0, framesTimer = null;
  let framesTries = /** @type {Object<string, number>} */ ({});  // "KEY#PART" -> times asked
  // held values decoded here where the page offers it (app/live_decoder.js), painted over the page's picture
  const decoder = browserDecoder(/** @type {HTMLCanvasElement} */ ($("decoded")), { held: () => held,
    painted: (attention, line) => { showGaussians(attention, true); showCaption(line); }, changed: () => askForFrames() });
  const stats = /** @type {LiveStats} */ (window.__liveControls = { sent: 0, answered: 0, renders: 0, values: local,
    trips: [], scrubbed: 0, frames: null, parts: 0, partsWanted: 0, overlays: 0, overlaid: 0, captions: 0,
    means: () => overlay.drawnMeans(), decoder: decoder.stats, pageLabels: null, swaps: 0 });  // for tests and benchmarks (app/globals.d.ts)
  const self = { send: /** @param {ValueMessage} message */ (message) => {} };  // each render sets its own

  const flow = new Flow({
    post: (message) => { self.send(message); stats.sent += 1; },
    now: () => performance.now(), later: (fn, ms) => setTimeout(fn, ms), held: () => held,
    covered: (values) => covers(frames, frameFor(values)), session: Math.random().toString(36).slice(2, 10),
    exact: (values) => Boolean(frames && frames.exact) && covers(frames, frameFor(values)),
  });
  stats.trips = flow.trips;
  // a value the browser decodes is painted at once; held, it is not sent (one waiting is dropped): a final one is
  const propose = (final) => {
    const changed = held || JSON.stringify({ values: local, final: true, frames: null, decoder: null }) !== flow.lastSent;
    if (!(changed && decoder.decode(local, !held)) || final) flow.propose(local, final); else flow.pending = null;
  };

  function frameFor(values) {  // the picture made nearest to `values`, if made for the page's state
    if (!padSpec || padMode === "radius") return null;
    return nearestFrame(frames, framesKey, values, controls);
  }

  // ---------------------------------------------------------------------------- sliders
  function buildSliders(list, columns) {
    sliderBox.textContent = "";
    sliderBox.style.setProperty("--columns", String(columns));
    controls = {};
    for (const c of list) {
      controls[c.key] = c;
      const head = element("div", "head");
      c.valueText = element("span", "value");
      head.append(element("span", "", c.label), c.valueText);
      const track = element("div", "track"), bar = element("div", "bar");
      c.fill = element("div", "fill");
      bar.append(c.fill);
      for (const [kind, ranges] of [["dead", c.dead], ["blend", c.blend ? [c.blend] : []]]) {
        for (const [a, b] of ranges) {  // marked parts of the range, e.g. the quadrant's dead zones
          const band = element("div", "band " + kind);
          band.style.left = (100 * fraction(c, a)) + "%";
          band.style.width = (100 * (fraction(c, b) - fraction(c, a))) + "%";
          bar.append(band);
        }
      }
      const input = c.input = element("input");
      input.type = "range";
      input.setAttribute("aria-label", c.label);
      if (c.help) input.title = c.help;
      if (c.kind === "stack") { input.min = "0"; input.max = String(c.positions.length - 1); input.step = "1"; }
      else { input.min = String(c.low); input.max = String(c.high); input.step = String(c.step); }
      input.disabled = c.kind === "stack" && c.positions.length < 2;
      const fromInput = () => (c.kind === "stack" ? c.positions[parseInt(input.value, 10)][0]
                                                 : snap(c, parseFloat(input.value)));
      input.addEventListener("pointerdown", () => { held = true; });
      input.addEventListener("input", () => { local[c.key] = fromInput(); showValues(); propose(!held); scrub(); });
      input.addEventListener("change", () => { local[c.key] = fromInput(); showValues(); propose(true); });
      input.addEventListener("keydown", (event) => {  // Down increases where the picture's y grows downwards
        if (!c.down || (event.key !== "ArrowDown" && event.key !== "ArrowUp")) return;
        event.preventDefault();
        local[c.key] = nudge(c, local[c.key], event.key === "ArrowDown" ? 1 : -1);
        showValues();
        propose(true);
      });
      track.append(bar, input);
      const ends = element("div", "ends");
      const first = c.kind === "stack" ? c.positions[0][0] : c.low;
      const last = c.kind === "stack" ? c.positions[c.positions.length - 1][0] : c.high;
      ends.append(element("span", "", valueText(c, first)), element("span", "", valueText(c, last)));
      const box = element("div", "control");
      box.append(head, track, ends);
      sliderBox.append(box);
    }
  }

  function inputValue(c, value) {  // what the <input type=range> holds: the number, or the slice's rank
    return c.kind === "stack" ? String(Math.max(0, c.positions.findIndex((p) => p[0] === value))) : String(value);
  }

  function showValues() {
    for (const c of Object.values(controls)) {
      const value = local[c.key];
      if (value === undefined || value === null) continue;
      if (c.input.value !== inputValue(c, value)) c.input.value = inputValue(c, value);
      c.input.setAttribute("aria-valuetext", valueText(c, value).replace("\u2212", "-"));  // as st.slider's: "-0.50"
      c.valueText.textContent = valueText(c, value);
      const rank = parseFloat(c.input.value), span = parseFloat(c.input.max) - parseFloat(c.input.min);
      c.fill.style.width = (100 * (rank - parseFloat(c.input.min)) / (span || 1)) + "%";  // up to the thumb
    }
    drawMarks();
    stats.values = Object.assign({}, local);
  }

  function release() {  // the exact final value
    if (!held) return;
    [held, padMode, padBox] = [false, null, null];
    propose(true);
  }
  for (const type of ["pointerup", "pointercancel"]) window.addEventListener(type, release);

  // ---------------------------------------------------------------------------- the pad
  /** @returns {[Control, Control, (Control|null)]} the pad's x, y, radius (called only while there is a pad) */
  function padAxes() {
    const spec = /** @type {PadSpec} */ (padSpec);
    return [controls[spec.x], controls[spec.y], spec.r ? controls[spec.r] : null];
  }

  function drawMarks() {
    if (!padSpec) return;
    const [cx, cy, cr] = padAxes();
    if (!padSize[0]) padSize = [pad.clientWidth, pad.clientHeight];  // else the size the observer last saw
    const [width, height] = padSize, grid = [], names = [];
    if (!padSpec.hasImage) {  // a plain pad: the axes' grid (each slice of a stack) and their names
      for (const c of [cx, cy]) {
        const stops = c.kind === "stack" ? c.positions.map((p) => fraction(c, p[0])) : [0, 0.25, 0.5, 0.75, 1];
        for (const f of stops) grid.push(c === cx ? [f * width, 0, f * width, height] : [0, f * height, width, f * height]);
      }
      names.push([width - 4, height - 4, "end", cx.label + " →"], [4, 12, "start", cy.label + " ↓"]);
    }
    const radius = cr ? local[cr.key] : undefined, hasRing = radius !== undefined;
    padMarker.draw(specText + width + "x" + height + hasRing, width, height, grid, names, hasRing, padSpec.hasImage);
    const px = fraction(cx, local[cx.key]) * width, py = fraction(cy, local[cy.key]) * height;
    // the radius ring, in the pad's normalised units
    padMarker.place(px, py, hasRing ? [radius * width / (cx.high - cx.low), radius * height / (cy.high - cy.low)] : null);
    const values = [cx, cy, ...(cr ? [cr] : [])].map((c) => c.label.split(" (")[0] + " " + valueText(c, local[c.key]));
    pad.setAttribute("aria-valuetext", values.join(", "));
    pad.dataset.fx = String(fraction(cx, local[cx.key]));  // where the point is, for tests and benchmarks
    pad.dataset.fy = String(fraction(cy, local[cy.key]));
  }

  function padPointer(event) {  // the pointer as fractions of the pad (its box as at the press: no layout per move)
    const box = padBox || pad.getBoundingClientRect();
    return [Math.min(1, Math.max(0, (event.clientX - box.left) / box.width)),
            Math.min(1, Math.max(0, (event.clientY - box.top) / box.height))];
  }

  function padMove(event) {
    const [cx, cy, cr] = padAxes();
    const [fx, fy] = padPointer(event);
    if (padMode === "radius" && cr) {  // distance from the point, in the axes' units (normalised: 1 = half the side)
      const dx = (fx - fraction(cx, local[cx.key])) * (cx.high - cx.low);
      const dy = (fy - fraction(cy, local[cy.key])) * (cy.high - cy.low);
      local[cr.key] = snap(cr, Math.hypot(dx, dy));
    } else {
      local[cx.key] = fromFraction(cx, fx);
      local[cy.key] = fromFraction(cy, fy);
    }
    showValues();
    propose(false);
    scrub();
  }

  pad.addEventListener("pointerdown", (event) => {
    if (!padSpec || event.button !== 0) return;
    event.preventDefault();
    pad.focus();
    pad.setPointerCapture(event.pointerId);
    const [cx, cy, cr] = padAxes();
    padMode = "point";
    const box = padBox = pad.getBoundingClientRect();
    if (cr) {  // on the ring's edge (within 8 px): drag the radius
      const px = box.left + fraction(cx, local[cx.key]) * box.width, py = box.top + fraction(cy, local[cy.key]) * box.height;
      const rx = local[cr.key] * box.width / (cx.high - cx.low), ry = local[cr.key] * box.height / (cy.high - cy.low);
      const angle = Math.atan2((event.clientY - py) / ry, (event.clientX - px) / rx);
      const edge = Math.hypot(rx * Math.cos(angle), ry * Math.sin(angle));
      const distance = Math.hypot(event.clientX - px, event.clientY - py);
      if (Math.abs(distance - edge) <= 8 && distance > 10) padMode = "radius";
    }
    held = true;
    if (padMode === "point") padMove(event);
  });
  pad.addEventListener("pointermove", (event) => { if (held && padMode) padMove(event); });
  pad.addEventListener("lostpointercapture", release);

  pad.addEventListener("keydown", (event) => {  // arrows move the point (Down: down the picture); + / − the radius
    if (!padSpec) return;
    const [cx, cy, cr] = padAxes();
    const moves = { ArrowLeft: [cx, -1], ArrowRight: [cx, 1], ArrowUp: [cy, -1], ArrowDown: [cy, 1],
                    "+": [cr, 1], "=": [cr, 1], "-": [cr, -1], "_": [cr, -1] };
    const move = moves[event.key];
    if (!move || !move[0]) return;
    event.preventDefault();
    local[move[0].key] = nudge(move[0], local[move[0].key], move[1]);
    showValues();
    propose(true);
  });

  function showGaussians(attention, ahead) {  // over the picture shown, in the same paint as the picture
    if (!overlay.show(attention, overlaySpec, Boolean(padSpec && !padSpec.hasImage))) return;
    stats.overlays += 1;
    stats.overlaid += ahead && attention ? 1 : 0;  // moved by a picture made ahead, between the page's answers
  }

  // the picture, and the Gaussians drawn over it; `labels`: the page's picture's labels hash (a decoded mask so stays)
  function showImage(src, label, attention, ahead = false, labels = /** @type {string|null} */ (null)) {
    image.alt = label || "";
    [attentionWanted, aheadWanted] = [attention || null, ahead];
    if (!src) { image.hidden = true; imageWanted = null; showGaussians(null, false); return; }
    // the same picture: its Gaussians may differ (another channel choice)
    if (src === imageWanted) {  // and the page's own picture replaces a decoded one (the same picture)
      if (image.src === src) { showGaussians(attentionWanted, aheadWanted); if (!held && !ahead && !decoder.keeps(labels)) decoder.hide(); }
      return;
    }
    imageWanted = src;
    const probe = new Image();  // decode first, then swap: the old picture stays until the new one is ready
    probe.src = src;
    const swap = () => {
      if (imageWanted !== src) return;  // a newer one came meanwhile
      // the page's picture (released: its exact one) replaces the decoded one, unless it is the same mask
      if (!held && !decoder.keeps(labels)) decoder.hide();
      image.src = src;
      image.hidden = false;
      stats.swaps += 1;
      showGaussians(attentionWanted, aheadWanted);
      requestAnimationFrame(drawMarks);
    };
    probe.decode().then(swap, swap);
  }

  const showCaption = captionWriter(caption);  // the Dice line under the picture (app/live_overlay.js)

  // ---------------------------------------------------------------------------- scrubbing
  function scrub() {  // while held: the nearest picture made ahead (and its Gaussians), without waiting for the page
    const frame = held && !decoder.showing() ? frameFor(local) : null;
    if (!frame) return;
    stats.scrubbed += 1;
    showImage(frame.src, image.alt, frame.attention, true);
    if (frame.caption !== null && showCaption(frame.caption)) stats.captions += 1;
  }

  function askForFrames(delay = 250) {  // when nothing else goes on: the decoder's part, else a part made ahead
    clearTimeout(framesTimer);
    $("path").textContent = decoder.path(Boolean(framesKey));
    framesTimer = setTimeout(() => {
      if (held || !flow.idle()) return;  // the next render asks again
      const asking = decoder.request(performance.now());
      const part = asking ? null : askPart(frames, framesKey, framesParts, framesReady, framesTries, FRAMES_TRIES);
      if (asking) flow.propose(local, true, null, asking);
      else if (part && part.poll && delay < POLL_MS) askForFrames(POLL_MS);  // the page is making it: ask later
      else if (part) flow.propose(local, true, part.request);
      else if (decoder.pending()) askForFrames();  // the page is still exporting the model: ask again soon
    }, delay);
  }

  function keepFrames(part) {  // decoded once, so scrubbing swaps pictures without decoding
    const kept = keepPart(frames, part);
    if (!kept.added) return;
    frames = kept.frames;
    stats.frames = part.key;
    stats.parts = frames.got.length;
    const all = part.points.map((p) => p[2]).concat(...Object.values(part.strips || {}).map((strip) => strip.images));
    for (const src of all) { const probe = new Image(); probe.src = src; probe.decode().catch(() => {}); }
  }

  // ---------------------------------------------------------------------------- page -> component
  const resized = new ResizeObserver(() => { padSize = [pad.clientWidth, pad.clientHeight]; drawMarks(); });
  resized.observe(pad);  // the pad's marks follow its size (read here, after layout: a move reads no layout)

  function build(args) {  // the widgets, when the controls or the pad change
    buildSliders(args.controls, args.columns);
    padSpec = args.pad ? Object.assign({ hasImage: Boolean(args.image) && args.pad.on_image !== false }, args.pad) : null;
    pad.hidden = !padSpec;
    image = padSpec && !padSpec.hasImage ? picture : padImage;  // the other one stays hidden
    // as wide as the pad: a smaller picture made ahead is stretched to it, so nothing moves while scrubbing
    if (padSpec) $("below").style.width = padSpec.width + "px";
    (image === picture ? padImage : picture).hidden = true;
    image.after($("decoded"), $("gaussians"));  // the decoded mask, then the Gaussians, over the picture
    if (!padSpec) { showCaption(null); showGaussians(null, false); } else {  // no picture: no line, no Gaussians
      pad.setAttribute("aria-label", padSpec.label);
      pad.style.width = padSpec.width + "px";
      pad.style.aspectRatio = padSpec.hasImage ? "" : String(1 / padSpec.aspect);  // height = aspect x width
    }
    const legend = $("legend");
    legend.hidden = !args.legend;
    legend.textContent = "";
    for (const kind of ["dead", "blend"]) {  // what the marked parts of the sliders mean (the condition's words)
      if (args.legend && args.legend[kind]) legend.append(element("span", "swatch " + kind),
                                                          element("span", "words", args.legend[kind]));
    }
    Object.assign($("hint"), { hidden: !args.hint, textContent: args.hint || "" });
    local = {};
    flow.lastSent = null;
  }

  function render(/** @type {RenderArgs} */ args) {  // the page's arguments (app/protocol.py)
    stats.renders += 1;
    const answered = flow.answer(args.ack) !== null && (stats.answered += 1) > 0;  // it answered the value in flight
    overlaySpec = args.overlay || null;
    const spec = JSON.stringify([args.controls, args.columns, args.pad, args.legend, args.hint]);
    if (spec !== specText) { specText = spec; build(args); }
    const title = $("title");
    title.textContent = padSpec && args.title ? args.title : "";
    title.hidden = !title.textContent;
    if (!held && flow.idle()) {  // the page's values (after an answer, or a change from elsewhere)
      let changed = false;
      for (const key of Object.keys(controls)) {
        if (key in args.values && args.values[key] !== local[key]) { local[key] = args.values[key]; changed = true; }
      }
      flow.adopt(local);
      if (changed) showValues();
    }
    for (const key of Object.keys(controls)) if (local[key] === undefined) local[key] = args.values[key];
    showValues();
    if (args.frames) keepFrames(args.frames);
    stats.pageLabels = args.labels_hash || null;
    decoder.take(padSpec && padSpec.hasImage ? args.decoder : null, args.decoder_part, local);
    framesKey = args.frames_key || null;
    framesParts = stats.partsWanted = args.frames_parts || 0;
    framesReady = args.frames_ready === undefined ? framesParts : args.frames_ready;
    if (padSpec) {  // the page's exact picture, unless the pointer has moved on and the grid has one nearer,
      // or, released, this answers a value older than the one in flight (the final's picture is coming)
      const exact = Object.keys(controls).every((key) => args.values[key] === local[key]);
      const found = held && !exact ? frameFor(local) : null, nearer = covers(frames, found) ? found : null;
      const stale = (!held && flow.inFlight !== null && image.src && !image.hidden) || (held && decoder.showing());
      if (!stale) {
        showImage(nearer ? nearer.src : args.image, args.image_label, nearer ? nearer.attention : args.attention,
                  Boolean(nearer), nearer ? null : args.labels_hash || null);
        showCaption(nearer && nearer.caption !== null ? nearer.caption : args.caption);
      }
    }
    // a final value answered by the controls alone (its exact frame): now the rest of the area, unless a newer value waits
    if (answered && args.area && !held && flow.pending === null) flow.propose(args.values, true, null, null, true);
    flow.send();  // the newest value, if one waited for this answer
    askForFrames();
  }

  function unmount() {  // the element left the page: nothing of it keeps listening
    for (const type of ["pointerup", "pointercancel"]) window.removeEventListener(type, release);
    resized.disconnect();
    clearTimeout(framesTimer);
    decoder.stop();  // its worker
  }

  return Object.assign(self, { render, unmount });
}
