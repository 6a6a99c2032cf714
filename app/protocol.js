// The messages between the page (Python) and the streaming controls in the browser: app/protocol.py's shapes
// (its docstring says what each field means and the flow control), as JSDoc types. Types only, for the type
// checker (`tsc --checkJs`, jsconfig.json, tests/test_js.py): the component's module is made of
// app/live_controls_core.js, app/live_overlay.js and app/live_controls.js, which `@import` these.
/**
 * @typedef {{key: string, label: string, help: (string|null), low: number, high: number, step: number,
 *            decimals: number, down: boolean, dead: Array<[number, number]>,
 *            blend: ([number, number]|null)}} ControlBase  what every control has (`dead` / `blend`: marked
 *            parts of its range; `down`: ArrowDown increases it)
 * @typedef {ControlBase & {kind: "slider"}} SliderSpec  a slider over [low, high] on its step grid
 * @typedef {ControlBase & {kind: "stack", positions: Array<[number, number]>}} StackSpec  a stack of slices:
 *            its [slice index, position]s, base to apex
 * @typedef {SliderSpec | StackSpec} ControlSpec  a control, as the page describes it
 * @typedef {{x: string, y: string, r: (string|null), width: number, aspect: number, label: string,
 *            on_image: boolean}} PadSpec  the pad: the keys of the controls it drives, its size and name
 * @typedef {{token: string, seq: number, values: Object<string, number>, final: boolean,
 *            frames: (string|null), decoder?: (string|null), area?: boolean}} ValueMessage  browser -> page: a
 *            value, or a request for pictures, for the decoder's part, or for the rest of the area (`area`)
 * @typedef {[number[], number[], number[], number[], number[], ([number, number, ?number, ?number]|null)]}
 *            Gaussians  a frame's
 *            drawn channels (app/frame.gaussians): means x, y, 1-sigma radii x, y, gamma, and where z points
 *            [column, row, ring rx, ring ry] (rings null) or null; in pixels of the model's grid (centre k at k)
 * @typedef {{grid: [number, number], ring: string, positive: string, negative: string, marker: string,
 *            key: string}} OverlaySpec  page -> browser: the grid (h, w) the Gaussians are in, their colours
 *            (app/frame.overlay_spec) and the line that says what they are
 * @typedef {{at: Object<string, number>, values: number[], images: string[], attention: Array<(Gaussians|null)>,
 *            captions: Array<(string|null)>}} Strip  every step of one slider, the other control held
 * @typedef {[number, number, string, (Gaussians|null), (string|null)]} FramePoint  a picture made ahead: its x and
 *            y values, the picture (a data URI), its Gaussians and its Dice line
 * @typedef {{key: string, part: number, parts: number, x: string, y: string, base: Object<string, number>,
 *            points: FramePoint[], strips?: Object<string, Strip>, exact?: boolean}} FramesPart  page -> browser:
 *            one part (`exact`: every pad value is a point, drawn as the page draws it)
 * @typedef {{key: string, model: string, ready: boolean}} DecoderOffer  page -> browser: what it may decode
 * @typedef {{x: string, y: string, xs: number[], ys: number[], dim: number, base: Object<string, number>,
 *            data: string}} ZGrid  z for every value of the pad's two controls' grids ([low, step, count, decimals])
 * @typedef {{index: string, maps: number[][], labels: number[], names: string[], lead: string, empty: string,
 *            none: string}} TruthPart  each grid value's ground truth (`index`: base64 uint8, 255: none) as runs
 *            [label, count, ...] at the model's grid, and the Dice line's words (app/frame.dice_line)
 * @typedef {{key: string, model: string, onnx: (string|null), inputs: Object<string, [number[], string]>,
 *            dtype?: string, logits: number[], grid: ZGrid, layer: number, channels: (number[]|null),
 *            keep: number[], truth?: (TruthPart|null),
 *            anatomy: boolean, base: string, colours: Object<string, number[]>, alpha: number}} DecoderPart  page ->
 *            browser, once asked: the .onnx (base64, null if the browser has it), the features (float32, base64)
 * @typedef {{controls: ControlSpec[], values: Object<string, number>, ack: (string|null), pad: (PadSpec|null),
 *            image: (string|null), labels_hash?: (string|null), image_label: string,
 *            caption: (string|null), title: (string|null),
 *            attention: (Gaussians|null), overlay: (OverlaySpec|null), columns: number,
 *            legend: (Object<string, string>|null), hint: string, frames_key: (string|null),
 *            frames_parts: number, frames_ready?: number, frames: (FramesPart|null),
 *            decoder: (DecoderOffer|null),
 *            decoder_part: (DecoderPart|null), area?: boolean}} RenderArgs  page -> browser: the component's
 *            `data` on every run (`area`: a final value answered by the controls alone: ask for the rest)
 */
export {};
