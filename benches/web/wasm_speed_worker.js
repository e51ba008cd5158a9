// The threaded edgecap build for benches/web/wasm_speed.mjs, in a dedicated worker as the app runs
// its engine: a worker may block on a lock while rayon's workers compute, where the page's main
// thread would have to spin and take a core from them. Messages: {type: 'load', bytes, threads},
// {type: 'caption', frame, width, height, opts}, {type: 'mem'}; each is answered once, or with
// {type: 'error', message}.
let pkg;
let engine;

self.onmessage = async ({ data }) => {
  try {
    if (data.type === 'load') {
      pkg = await import('/pkg-threads/edgecap.js');
      await pkg.default();
      await pkg.initThreadPool(data.threads);
      const start = performance.now();
      engine = await pkg.Engine.fromBytes(data.bytes, 'cpu');
      postMessage({ type: 'load', adapter: engine.adapter, loadMs: performance.now() - start, mem: pkg.wasmMemoryBytes() });
    } else if (data.type === 'caption') {
      const r = await engine.captionWith(data.frame, data.width, data.height, data.opts);
      postMessage({ type: 'caption', vision: r.timingsMs.vision, decode: r.timingsMs.decode, ids: Array.from(r.tokenIds) });
    } else if (data.type === 'mem') {
      postMessage({ type: 'mem', mem: pkg.wasmMemoryBytes() });
    }
  } catch (e) {
    postMessage({ type: 'error', message: String((e && e.stack) || e) });
  }
};
