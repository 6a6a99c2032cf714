// For the type checker only (`tsc --checkJs`, jsconfig.json): what the parts of the streaming controls' one ES
// module share (app/live_controls.py joins live_controls_core.js, live_overlay.js and live_controls.js, in this
// order, into the module Streamlit runs), and what the component shows tests and benchmarks on `window`.
declare const LiveCore: typeof import("./live_controls_core.js");
declare const DecodeCore: typeof import("./decode_core.js");

/** The component's arguments from Streamlit (the library's types): `data` is the page's, `value` the trigger. */
type LiveControlsArgs = import("@streamlit/component-v2-lib").FrontendRendererArgs<
  { value: import("./protocol.js").ValueMessage }, import("./protocol.js").RenderArgs>;

/** A control as app/live_controls.js keeps it: the page's spec with its widgets. */
type Control = import("./protocol.js").ControlSpec & {
  input: HTMLInputElement; fill: HTMLElement; valueText: HTMLElement;
};

/** What happened, for tests and benchmarks (app/live_controls.js, the newest instance's): values sent and answered,
 * renders, the values shown, the round trips (ms), pictures made ahead shown (`scrubbed`), their key and parts kept
 * and wanted, Gaussians drawn (`overlaid`: by a picture made ahead), Dice lines shown, the means drawn now, the labels
 * hash of the page's last picture (`pageLabels`). */
type LiveStats = {
  sent: number; answered: number; renders: number; values: Record<string, number>; trips: number[];
  scrubbed: number; frames: string | null; parts: number; partsWanted: number; overlays: number;
  overlaid: number; captions: number; means: () => number[][]; decoder: DecoderStats; pageLabels: string | null;
  swaps: number;
};

/** Decoding in the browser (app/live_decoder.js): decodes run and painted, distinct masks painted (by their labels),
 * ms per decode in the worker (the last 200), its state, the labels painted last (model size), the times the page's
 * picture found the mask shown the same and kept it (`kept`), the painted picture's labels hash (`drawn`); masks
 * painted from the cache (`hits`), paints whose mask differed from the one before (`changes`), values given whose
 * mask (known from the cache) differed from the value's before (`passed`: the most a drag could paint), masks kept, and
 * the line painted under the last mask (`line`: its Dice line, or what says it comes with the page's frame). */
type DecoderStats = {
  decoded: number; painted: number; distinct: number; ms: number[]; state: () => string; hashes: Set<string>;
  labels: Uint8Array | null; kept: number; drawn: string; hits: number; changes: number; passed: number;
  cached: () => number;
  cacheBytes: () => number; line: string;
};

interface Window {
  __liveControls?: LiveStats;
}
