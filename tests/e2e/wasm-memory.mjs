// Peak wasm memory while loading a model in headless Chromium, per backend: the page fetches the
// GGUF into a JS buffer, `Engine.fromBytes` loads it tensor by tensor, and `wasmMemoryBytes()`
// (wasm memory never shrinks, so it is the peak) is read before and after. With --caption 1 it
// also captions once (a full-size model on SwiftShader's software WebGPU takes many minutes).
//   node tests/e2e/wasm-memory.mjs --pkg pkg --model target/bench-models/blip-base-random-q8_0.gguf [--backends webgpu,cpu] [--caption 1]
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { withBrowser } from './harness.mjs';

const { values: args } = parseArgs({
  options: { pkg: { type: 'string' }, model: { type: 'string' }, backends: { type: 'string' }, caption: { type: 'string' } },
});
const pkg = path.resolve(args.pkg || 'pkg');
const model = path.resolve(args.model || 'target/bench-models/blip-base-random-q8_0.gguf');
const backends = (args.backends || 'webgpu,cpu').split(',');
const caption = args.caption === '1';
const mb = (b) => (b / 1048576).toFixed(1);

// The largest tensor, from the GGUF header (tensor infos: name, dims, type, offset; sizes from offsets).
function largestTensorBytes(file) {
  const out = execFileSync('python3', ['-c', `
import sys, gguf
r = gguf.GGUFReader(sys.argv[1])
print(max(int(t.n_bytes) for t in r.tensors))`, file]);
  return Number(String(out).trim());
}

const modelsDir = path.dirname(model);
const largest = largestTensorBytes(model);
console.log(`model ${path.basename(model)}: ${mb(fs.statSync(model).size)} MiB, largest tensor ${mb(largest)} MiB`);
let failed = false;
await withBrowser({ dist: pkg, models: modelsDir }, async ({ browser, server }) => {
  for (const backend of backends) {
    const page = await browser.newPage();
    // The figures come back as a console line as soon as they exist: on SwiftShader the page can
    // stay busy for minutes afterwards while the software GPU digests the uploads.
    let resolveResult;
    const result = new Promise((r) => { resolveResult = r; });
    page.on('console', (m) => {
      const t = m.text();
      if (t.startsWith('RESULT ')) resolveResult(JSON.parse(t.slice(7)));
      else console.log(`  ${backend}: ${t}`);
    });
    await page.goto(`${server.url}/example.html`);
    page.evaluate(async ({ url, backend, caption }) => {
      try {
        const m = await import('/edgecap.js');
        await m.default();
        const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
        const before = m.wasmMemoryBytes();
        const t0 = performance.now();
        const engine = await m.Engine.fromBytes(bytes, backend);
        const loadMs = performance.now() - t0;
        const afterLoad = m.wasmMemoryBytes();
        let c = null;
        if (caption) c = await engine.caption(new Uint8Array(384 * 384 * 4).fill(128), 384, 384);
        console.log('RESULT ' + JSON.stringify({ before, afterLoad, afterCaption: m.wasmMemoryBytes(), loadMs, captionMs: c && c.ms, backend: engine.backend, adapter: engine.adapter }));
      } catch (e) {
        console.log('RESULT ' + JSON.stringify({ error: `${e.code || ''} ${e.message}` }));
      }
    }, { url: `/models/${path.basename(model)}`, backend, caption }).catch(() => {});
    const r = await result;
    if (r.error) {
      console.log(`${backend}: FAILED to load: ${r.error}`);
      failed = true;
      await page.close();
      continue;
    }
    const overhead = r.afterLoad - largest;
    console.log(`${backend}: adapter "${r.adapter}"; wasm memory at start ${mb(r.before)} MiB, after load ${mb(r.afterLoad)} MiB ` +
      `(load ${(r.loadMs / 1000).toFixed(1)} s)` +
      (caption ? `, after one caption ${mb(r.afterCaption)} MiB (${(r.captionMs / 1000).toFixed(1)} s)` : '') +
      (backend === 'webgpu' ? `; after load - largest tensor = ${mb(overhead)} MiB (target <= 64)` : ''));
    if (backend === 'webgpu' && overhead > 64 * 1048576) failed = true;
    await page.close();
  }
});
process.exit(failed ? 1 : 0);
