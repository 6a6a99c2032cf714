// Scrubbing, for app/live_controls.html (loaded before its script; they share one global scope): pictures of
// the predicted mask made ahead by the page (app/scrub.py), kept here part by part and shown while the pad or
// a slider is dragged, with the Gaussians each carries (handed to the attention chart, app/live_chart.html,
// same origin) and its Dice line. Uses the page script's state at call time: controls, local, held, padSpec,
// padMode, image, inFlight, pending, send(), fraction(), showImage().

let frames = null;       // {key, parts, x, y, base, points, strips, got}: pictures over the pad's (x, y)
let framesKey = null;    // the key of the pictures the page's current state would use (null: none)
let framesParts = 0;     // in how many parts
let framesTries = {};    // "KEY#PART" -> how often it was asked for
let framesTimer = null;

function frameFor(values) {  // the picture made nearest to `values`, if made for the page's state
  if (!frames || frames.key !== framesKey || !padSpec || padMode === "radius") return null;
  for (const [key, value] of Object.entries(frames.base)) if (values[key] !== value) return null;
  const nearest = (grid, v) => grid.reduce((best, g, i) => (Math.abs(g - v) < Math.abs(grid[best] - v) ? i : best), 0);
  for (const [key, strip] of Object.entries(frames.strips || {})) {  // one control moved alone: every step
    const [other, at] = Object.entries(strip.at)[0];
    if (values[other] === at) {
      const k = nearest(strip.values, values[key]);
      return { src: strip.images[k], attention: strip.attention ? strip.attention[k] : null,
               caption: strip.captions ? strip.captions[k] : null };
    }
  }
  const cx = controls[frames.x], cy = controls[frames.y];
  const fx = fraction(cx, values[frames.x]), fy = fraction(cy, values[frames.y]);
  let best = null, distance = Infinity;
  for (const point of frames.points) {  // a stack's slice must match: each slice is another image
    const [x, y] = point;
    if (cy.kind === "stack" && y !== values[frames.y]) continue;
    const d = Math.hypot(fraction(cx, x) - fx, fraction(cy, y) - fy);
    if (d < distance) { distance = d; best = point; }
  }
  return best ? { src: best[2], attention: best[3] || null, caption: best[4] ?? null } : null;
}

function scrub() {  // while held: the nearest picture made ahead (and its Gaussians), without waiting for the page
  const frame = held ? frameFor(local) : null;
  if (!frame) return;
  window.__liveControls.scrubbed += 1;
  showImage(frame.src, image.alt);
  drawAttention(frame.attention);
  if (frame.caption !== null && frame.caption !== captionShown) {
    showCaption(frame.caption);
    window.__liveControls.captions += 1;
  }
}

let captionShown = null;
function showCaption(text) {  // the page's own words; "**" marks bold (text nodes only, never HTML)
  if (text === captionShown) return;
  captionShown = text;
  caption.textContent = "";
  caption.hidden = !text;
  (text || "").split("**").forEach((part, k) => {
    if (!part) return;
    if (k % 2) { const bold = document.createElement("strong"); bold.textContent = part; caption.append(bold); }
    else caption.append(document.createTextNode(part));
  });
}

let chartWindow = null;  // the attention chart's frame (app/live_chart.html), same origin
function attentionChart() {
  if (chartWindow && !chartWindow.closed && chartWindow.__scrubAttention) return chartWindow;
  chartWindow = null;
  try {
    for (const frame of window.parent.document.querySelectorAll("iframe")) {
      const w = frame.contentWindow;
      if (w && w.__scrubAttention && w.__liveChart && w.__liveChart.names.includes("μ")) { chartWindow = w; break; }
    }
  } catch (error) { /* another origin: the Gaussians follow the page's answers only */ }
  return chartWindow;
}

function drawAttention(attention) {
  const chart = attention ? attentionChart() : null;
  if (!chart) return;
  window.parent.__scrubHeld = true;  // the chart holds the page's older figures until the release
  chart.__scrubAttention(attention);
  window.__liveControls.attention += 1;
}

function attentionReleased() {
  try { window.parent.__scrubHeld = false; } catch (error) { return; }
  if (chartWindow && !chartWindow.closed && chartWindow.__scrubDone) chartWindow.__scrubDone();
}

function nextPart() {  // "KEY#PART" of the first part not kept yet, or null when all are
  if (!framesKey) return null;
  const got = frames && frames.key === framesKey ? frames.got : [];
  for (let part = 0; part < framesParts; part += 1) if (!got.includes(part)) return framesKey + "#" + part;
  return null;
}

function askForFrames() {  // one part at a time, each once, when nothing else is going on
  clearTimeout(framesTimer);
  const wanted = nextPart();
  if (!wanted || (framesTries[wanted] || 0) >= FRAMES_TRIES) return;
  framesTimer = setTimeout(() => {
    if (held || inFlight !== null || pending !== null || nextPart() !== wanted) return;
    if ((framesTries[wanted] || 0) >= FRAMES_TRIES) return;
    framesTries[wanted] = (framesTries[wanted] || 0) + 1;
    pending = { values: Object.assign({}, local), final: true, frames: wanted };
    send();
  }, 250);
}

function keepFrames(part) {  // decoded once, so scrubbing swaps pictures without decoding
  if (frames && frames.key === part.key && frames.got.includes(part.part)) return;  // a render sent again
  if (!frames || frames.key !== part.key) frames = { key: part.key, points: [], strips: {}, got: [] };
  Object.assign(frames, { parts: part.parts, x: part.x, y: part.y, base: part.base });
  frames.points = frames.points.concat(part.points);
  Object.assign(frames.strips, part.strips || {});
  frames.got.push(part.part);
  window.__liveControls.frames = part.key;
  window.__liveControls.parts = frames.got.length;
  const all = part.points.map((p) => p[2]).concat(...Object.values(part.strips || {}).map((strip) => strip.images));
  for (const src of all) { const probe = new Image(); probe.src = src; probe.decode().catch(() => {}); }
}

