// INSIDE's Gaussians drawn over the streaming controls' picture (app/live_controls.js): the drawn channels'
// 1-sigma rings, their means (coloured by the sign of gamma) and where z points, as an SVG laid over the
// picture. Its viewBox is the model's grid in pixels (pixel k's centre at k, the image from -0.5 to w - 0.5,
// as app/plots.attention_figure draws them), stretched over the picture, so a mark sits where the same
// pixel of the picture is at any displayed size. The shapes are `LiveCore.overlayShapes`' (node-tested);
// the page's frame and every picture made ahead carry their Gaussians (app/frame.gaussians), so while a
// control is dragged the Gaussians change with the picture, in the same paint, and nothing else is asked.
const SVG_NS = "http://www.w3.org/2000/svg";

function element(tag, className, text) {  // a new element, with its class and its text (app/live_controls.js)
  const node = Object.assign(document.createElement(tag), className ? { className: className } : {});
  if (text !== undefined) node.textContent = text;
  return node;
}

/** The writer of the line under the picture (`caption`): the page's own words, "**" marking bold (text nodes only,
 * never HTML); says whether the line changed. */
function captionWriter(caption) {
  let shown = null;
  return (/** @type {string|null} */ text) => {
    if (text === shown) return false;
    shown = text;
    caption.textContent = "";
    caption.hidden = !text;
    (text || "").split("**").forEach((part, k) => {
      if (part) caption.append(k % 2 ? element("strong", "", part) : document.createTextNode(part));
    });
    return true;
  };
}

/** The overlay in `svg` (an element of the component's markup), with its one line of words in `key`.
 * `show(attention, spec, withQuery)` draws a frame's Gaussians (null: none; `spec`: OverlaySpec) and says
 * whether anything changed; `withQuery`: also where z points (not where the pad draws that point itself). */
function gaussianOverlay(svg, key) {
  const node = (tag, attributes) => {
    const made = document.createElementNS(SVG_NS, tag);
    for (const [name, value] of Object.entries(attributes)) made.setAttribute(name, value);
    return made;
  };
  let shown = null;  // what is drawn now, as JSON: the same Gaussians again redraw nothing
  let means = [];    // the mean dots, reused from frame to frame (their count is the drawn channels')
  const rings = node("path", { class: "rings", fill: "none", "stroke-width": 1.5 });
  const queryRing = node("path", { class: "query-ring", fill: "none", "stroke-width": 2, "stroke-dasharray": "6 4" });
  const query = node("path", { class: "query", fill: "none", "stroke-width": 3 });
  svg.append(rings, queryRing, query);
  for (const part of [rings, queryRing, query]) part.setAttribute("vector-effect", "non-scaling-stroke");

  function show(attention, spec, withQuery) {
    const text = JSON.stringify([attention, spec, withQuery]);
    if (text === shown) return false;
    shown = text;
    const shapes = spec ? LiveCore.overlayShapes(attention) : null;
    svg.toggleAttribute("hidden", !shapes);  // an SVG element has no `hidden` property: the attribute
    key.hidden = !shapes;
    key.textContent = shapes ? spec.key : "";
    if (!shapes) return true;
    const [height, width] = spec.grid;
    svg.setAttribute("viewBox", `-0.5 -0.5 ${width} ${height}`);
    svg.setAttribute("preserveAspectRatio", "none");
    rings.setAttribute("d", shapes.rings);
    rings.setAttribute("stroke", spec.ring);
    while (means.length > shapes.means.length) means.pop().remove();
    const r = 0.014 * Math.max(width, height);  // ~6 px across on the page's picture
    shapes.means.forEach((mean, k) => {
      if (!means[k]) {
        means[k] = node("ellipse", { class: "mean", stroke: "black", "stroke-width": 1 });
        means[k].setAttribute("vector-effect", "non-scaling-stroke");
        svg.insertBefore(means[k], queryRing);
      }
      const attributes = { cx: mean.x, cy: mean.y, rx: r, ry: r, fill: mean.positive ? spec.positive : spec.negative };
      for (const [name, value] of Object.entries(attributes)) means[k].setAttribute(name, value);
    });
    const cross = withQuery && shapes.query ? shapes.query : null;
    const arm = 0.04 * Math.max(width, height);
    const d = cross ? `M${cross.x - arm} ${cross.y}H${cross.x + arm}M${cross.x} ${cross.y - arm}V${cross.y + arm}` : "";
    query.setAttribute("d", d);
    queryRing.setAttribute("d", cross && shapes.ring ? shapes.ring : "");
    for (const part of [query, queryRing]) part.setAttribute("stroke", spec.marker);
    return true;
  }

  /** The means drawn now, [[x, y], ...] in the grid's pixels (for tests and benchmarks). */
  function drawnMeans() {
    if (svg.hasAttribute("hidden")) return [];
    return means.map((mean) => [Number(mean.getAttribute("cx")), Number(mean.getAttribute("cy"))]);
  }

  return { show, drawnMeans };
}

/** The pad's marks in `svg`: a plain pad's grid lines and axis names, built again only when `layout` (its spec
 * and size, as text) changes, and the point (and the radius ring) moved by their attributes on every move, so a
 * move adds no nodes. `grid`: [[x1, y1, x2, y2], ...]; `names`: [[x, y, anchor, text], ...]; `ring`: [rx, ry]|null. */
function padMarks(svg) {
  let built = null, ring = [], dots = [];
  const add = (tag, attributes) => {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
    svg.append(node);
    return node;
  };
  function draw(layout, width, height, grid, names, hasRing, hollow) {
    if (layout === built) return;
    built = layout;
    svg.textContent = "";
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    for (const [x1, y1, x2, y2] of grid) add("line", { x1, y1, x2, y2, stroke: "currentColor", "stroke-opacity": 0.15 });
    for (const [x, y, anchor, text] of names) add("text", { x, y, "text-anchor": anchor }).textContent = text;
    ring = hasRing ? [add("ellipse", { stroke: "black", "stroke-opacity": 0.6, "stroke-width": 4, fill: "none" }),
                      add("ellipse", { stroke: "white", "stroke-width": 2, "stroke-dasharray": "6 4", fill: "none" })] : [];
    // hollow on a picture (what is under the point, often the mask, stays visible); filled on a plain pad
    dots = [add("circle", { r: 8, fill: "none", stroke: "black", "stroke-opacity": 0.55, "stroke-width": 5 }),
            add("circle", { r: 8, fill: hollow ? "none" : "var(--primary)", stroke: "var(--primary)", "stroke-width": 3 }),
            add("circle", { r: 1.5, fill: "white" })];
  }
  function place(x, y, radii) {
    for (const dot of dots) { dot.setAttribute("cx", String(x)); dot.setAttribute("cy", String(y)); }
    for (const edge of ring) {
      for (const [name, value] of [["cx", x], ["cy", y], ["rx", radii[0]], ["ry", radii[1]]]) edge.setAttribute(name, String(value));
    }
  }
  return { draw, place };
}
