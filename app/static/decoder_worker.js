// The decoder of app/live_decoder.js, in a web worker (the page's thread stays free for the pointer): ONNX Runtime
// Web (./ort/, onnxruntime-web 1.31.1's WebAssembly build, committed; served by Streamlit's static serving) on one
// thread (Streamlit's pages are not cross-origin isolated: no SharedArrayBuffer, no wasm threads).
// Messages in: {type: "model", model, onnx: ArrayBuffer} (once per model), {type: "inputs", key, inputs: {name:
// [shape, Float32Array]]}} (once per image), {type: "run", id, z: Float32Array}. Out: {type: "ready", what} after
// each of the first two, {type: "ran", id, outputs: {name: Float32Array}, ms}, or {type: "failed", what, error}.
// One run at a time: the page sends the next when this one has answered (newest wins, app/live_decoder.js).
const ort = await import("./ort/ort.wasm.min.mjs");
ort.env.wasm.numThreads = 1;
ort.env.wasm.wasmPaths = new URL("./ort/", import.meta.url).href;

let session = null, model = null, feeds = null, inputsKey = null;

self.onmessage = async (event) => {
  const message = event.data;
  try {
    if (message.type === "model") {
      if (session) await session.release();
      session = null;
      model = message.model;
      session = await ort.InferenceSession.create(new Uint8Array(message.onnx), { executionProviders: ["wasm"] });
      self.postMessage({ type: "ready", what: "model", model: model });
    } else if (message.type === "inputs") {
      feeds = {};
      for (const [name, [shape, data]] of Object.entries(message.inputs)) feeds[name] = new ort.Tensor("float32", data, shape);
      inputsKey = message.key;
      self.postMessage({ type: "ready", what: "inputs", key: inputsKey });
    } else if (message.type === "run") {
      const start = performance.now();
      const z = new ort.Tensor("float32", message.z, [1, message.z.length]);
      const results = await session.run(Object.assign({}, feeds, { z: z }));
      const outputs = {};
      for (const [name, tensor] of Object.entries(results)) outputs[name] = tensor.data;
      self.postMessage({ type: "ran", id: message.id, key: inputsKey, outputs: outputs, ms: performance.now() - start },
                       Object.values(outputs).map((data) => data.buffer));
    }
  } catch (error) {
    self.postMessage({ type: "failed", what: message.type, id: message.id, error: String(error) });
  }
};
self.postMessage({ type: "ready", what: "runtime" });
