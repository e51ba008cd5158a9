// edgecap's wasm CPU path next to candle-transformers' quantized_blip compiled to wasm
// (benches/peers/candle-wasm), in one headless Chromium page: the same GGUF file, the same RGBA frame,
// 20 forced tokens, interleaved runs, medians and the ratio. Prints figures; asserts nothing but
// that both sides made bos + 20 tokens.
//
//   node benches/web/wasm_speed.mjs [--runs 5] [--tokens 20] [--threads N] [--model FILE.gguf] [--image FILE.png] [--no-build] [--no-candle] [--no-relaxed]
//
// Builds first (incremental; the first time about 8 min for benches/peers/candle-wasm and a few for
// edgecap's wasm): `bash scripts/build-pkg.sh` (pkg/), `bash benches/peers/candle-wasm/build.sh`
// (benches/peers/candle-wasm/pkg/), `bash scripts/build-pkg-threads.sh` (pkg-threads/, the threaded
// build; installs its pinned nightly once) and `bash scripts/build-pkg-relaxed.sh` (pkg-relaxed/, the
// relaxed-SIMD build; `--no-relaxed` leaves it out, as it must where the browser lacks relaxed SIMD). `--no-build` uses what is there. `--no-candle` times
// edgecap's two builds alone (a run in a few seconds instead of minutes: for A/B checks).
//
// Sides: edgecap and candle, wasm32 + SIMD128 (the repository's .cargo/config.toml), release, no
// wasm-opt, one thread; and edgecap's threaded build on `--threads` Web Workers (default: the
// CPU count; 0 leaves it out), run in a dedicated worker as the app runs its engine (wall time
// then includes the frame's postMessage). The page is cross-origin isolated (COOP/COEP), which
// the threaded build needs and the others ignore. A run is timed in JS
// around one call: RGBA frame (384x384, so neither side resizes) in, token ids out (bos + N).
// The model is a GGUF with candle's layout (`--compat candle`); by default the random-weight
// BLIP-base that `cargo bench --bench cpu_speed` writes on its first run.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ensureE2eDeps } from './e2e-deps.mjs';
import { decodePng } from '../../tests/e2e/png.mjs';

ensureE2eDeps();
const { median, withBrowser } = await import('../../tests/e2e/harness.mjs');

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    tokens: { type: 'string', default: '20' },
    threads: { type: 'string', default: String(os.cpus().length) },
    model: { type: 'string', default: path.join(REPO, 'target/bench-models/blip-base-random-q8_0.gguf') },
    image: { type: 'string', default: path.join(REPO, 'tests/fixtures/images/synthetic_384x384.png') },
    'no-build': { type: 'boolean', default: false },
    'no-candle': { type: 'boolean', default: false },
    'no-relaxed': { type: 'boolean', default: false },
  },
});
const runs = Number(values.runs);
const withCandle = !values['no-candle'];
const withRelaxed = !values['no-relaxed'];
const threads = Number(values.threads);
const tokens = Number(values.tokens);
const model = path.resolve(values.model);
// The weights' type for the table, from the file name as cpu_speed and `edgecap convert` name them.
const dtype = (path.basename(model).match(/q8_0|q4_k|q4_0|f16|f32/i) || ['gguf'])[0].toLowerCase();
const imageFile = path.resolve(values.image);
if (!(runs >= 1) || !(tokens >= 1)) throw new Error('--runs and --tokens must be at least 1');
if (!fs.existsSync(model)) {
  console.error(`${model} is missing: \`cargo bench --bench cpu_speed\` writes it on its first run (or give --model FILE.gguf, candle layout)`);
  process.exit(2);
}

function build(what, script) {
  const t = performance.now();
  execFileSync('bash', [path.join(REPO, script)], { cwd: REPO, stdio: ['ignore', 'ignore', 'inherit'] });
  console.log(`build ${what}: ${((performance.now() - t) / 1000).toFixed(1)} s (bash ${script})`);
}
if (!values['no-build']) {
  build('edgecap pkg/', 'scripts/build-pkg.sh');
  build('benches/peers/candle-wasm/pkg/', 'benches/peers/candle-wasm/build.sh');
  if (threads > 0) build('edgecap pkg-threads/', 'scripts/build-pkg-threads.sh');
  if (withRelaxed) build('edgecap pkg-relaxed/', 'scripts/build-pkg-relaxed.sh');
}
if (withRelaxed && !fs.existsSync(path.join(REPO, 'pkg-relaxed/edgecap.js'))) throw new Error('pkg-relaxed/ is missing: run without --no-build, or --no-relaxed');
if (threads > 0 && !fs.existsSync(path.join(REPO, 'pkg-threads/edgecap.js'))) throw new Error('pkg-threads/ is missing: run without --no-build, or --threads 0');
for (const f of ['pkg/edgecap.js', 'benches/peers/candle-wasm/pkg/candle_wasm.js']) {
  if (!fs.existsSync(path.join(REPO, f))) throw new Error(`${f} is missing: run without --no-build`);
}

const png = decodePng(fs.readFileSync(imageFile));
const mib = (b) => (b / 1048576).toFixed(0);
const f0 = (x) => x.toFixed(0);

console.log(`model: ${path.relative(REPO, model)} (${(fs.statSync(model).size / 1e6).toFixed(1)} MB)`);
console.log(`frame: ${path.relative(REPO, imageFile)} (${png.width}x${png.height} RGBA)`);
console.log(`machine: ${os.cpus().length} CPUs (${os.cpus()[0]?.model.trim()}); both sides single-threaded wasm`);

// The whole repository is served (pkg/, benches/peers/candle-wasm/pkg/, this page) and the model's folder at /models/.
await withBrowser({ dist: REPO, models: path.dirname(model), coi: threads > 0 }, async ({ browser, server }) => {
  const page = await browser.newPage();
  page.on('console', (m) => m.type() === 'error' && console.error(`  page: ${m.text()}`));
  page.on('pageerror', (e) => console.error(`  page error: ${e.message}`));
  await page.goto(`${server.url}/benches/web/wasm_speed.html`);

  const setup = await page.evaluate(async ({ url, frame, width, height, threads, withRelaxed }) => {
    const edgecap = await import('/pkg/edgecap.js');
    await edgecap.default();
    const candle = await import('/benches/peers/candle-wasm/pkg/candle_wasm.js');
    const candleWasm = await candle.default();
    if (typeof edgecap.Engine.prototype.captionWith !== 'function') {
      throw new Error('pkg/ has no Engine.captionWith: rebuild it (bash scripts/build-pkg.sh)');
    }
    const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
    const b = Uint8Array.from(atob(frame), (c) => c.charCodeAt(0));
    let t = performance.now();
    const engine = await edgecap.Engine.fromBytes(bytes, 'cpu');
    const edgecapLoadMs = performance.now() - t;
    t = performance.now();
    const peer = candle.CandleBlip.load(bytes);
    const candleLoadMs = performance.now() - t;
    window.bench = { engine, peer, frame: b, width, height, edgecapMem: () => edgecap.wasmMemoryBytes(), candleMem: () => candleWasm.memory.buffer.byteLength };
    let relaxed = null;
    if (withRelaxed) {
      // The relaxed-SIMD build on this page's thread, as the default one: its own module and memory.
      const pkg = await import('/pkg-relaxed/edgecap.js');
      await pkg.default();
      t = performance.now();
      const engine = await pkg.Engine.fromBytes(bytes, 'cpu');
      relaxed = { loadMs: performance.now() - t, adapter: engine.adapter, mem: pkg.wasmMemoryBytes() };
      window.bench.relaxed = engine;
      window.bench.relaxedMem = () => pkg.wasmMemoryBytes();
    }
    let threaded = null;
    if (threads > 0) {
      // One request at a time to the threaded build's worker: post, await its one answer.
      const worker = new Worker('/benches/web/wasm_speed_worker.js', { type: 'module' });
      const ask = (msg) => new Promise((resolve, reject) => {
        worker.onmessage = ({ data }) => (data.type === 'error' ? reject(new Error(data.message)) : resolve(data));
        worker.postMessage(msg);
      });
      window.bench.threaded = ask;
      window.bench.threadedMem = async () => (await ask({ type: 'mem' })).mem;
      threaded = await ask({ type: 'load', bytes, threads });
    }
    return {
      threaded, relaxed,
      ua: navigator.userAgent, crossOriginIsolated: self.crossOriginIsolated,
      backend: engine.backend, adapter: engine.adapter, candleThreads: peer.threads, candleSimd: peer.simd128,
      edgecapLoadMs, candleLoadMs, edgecapMem: edgecap.wasmMemoryBytes(), candleMem: candleWasm.memory.buffer.byteLength,
    };
  }, { url: `/models/${path.basename(model)}`, frame: Buffer.from(png.rgba).toString('base64'), width: png.width, height: png.height, threads, withRelaxed });
  const chromium = /Chrome\/([\d.]+)/.exec(setup.ua)?.[1];
  console.log(`browser: Chromium ${chromium} headless; crossOriginIsolated ${setup.crossOriginIsolated}; ` +
    `edgecap backend "${setup.backend}" (${setup.adapter}); candle threads ${setup.candleThreads}, simd128 ${setup.candleSimd}`);
  console.log(`load: edgecap ${f0(setup.edgecapLoadMs)} ms (wasm memory ${mib(setup.edgecapMem)} MiB), ` +
    `candle ${f0(setup.candleLoadMs)} ms (wasm memory ${mib(setup.candleMem)} MiB)` +
    (setup.relaxed ? `, edgecap relaxed ${f0(setup.relaxed.loadMs)} ms (${setup.relaxed.adapter}; wasm memory ${mib(setup.relaxed.mem)} MiB)` : '') +
    (setup.threaded ? `, edgecap threaded ${f0(setup.threaded.loadMs)} ms (${setup.threaded.adapter}; wasm memory ${mib(setup.threaded.mem)} MiB)` : ''));

  // One caption; wall time in JS around the call, split from each engine's own timings.
  const side = (name) => page.evaluate(async ({ name, tokens }) => {
    const { engine, relaxed, threaded, peer, frame, width, height } = window.bench;
    const opts = { minTokens: tokens, maxTokens: tokens };
    const t = performance.now();
    const r = name === 'candle' ? peer.caption(frame, width, height, tokens)
      : name === 'threaded' ? await threaded({ type: 'caption', frame, width, height, opts })
      : name === 'relaxed' ? await relaxed.captionWith(frame, width, height, opts)
      : await engine.captionWith(frame, width, height, opts);
    if (name === 'threaded') r.timingsMs = { vision: r.vision, decode: r.decode }, r.tokenIds = r.ids;
    const ms = performance.now() - t;
    return { ms, vision: r.timingsMs.vision, decode: r.timingsMs.decode, ids: Array.from(r.tokenIds) };
  }, { name, tokens });
  const check = (name, r) => {
    if (r.ids.length !== tokens + 1) throw new Error(`${name} made ${r.ids.length} ids, not bos + ${tokens}: ${r.ids}`);
    return r;
  };

  const sides = ['edgecap', ...(withCandle ? ['candle'] : []), ...(setup.relaxed ? ['relaxed'] : []), ...(setup.threaded ? ['threaded'] : [])];
  const label = { edgecap: 'edgecap', candle: 'candle', relaxed: 'edgecap relaxed', threaded: `edgecap ${threads} threads` };
  const warm = [];
  for (const name of sides) warm.push(`${label[name]} ${f0(check(name, await side(name)).ms)} ms`);
  console.log(`warm-up: ${warm.join(', ')}`);
  const all = Object.fromEntries(sides.map((n) => [n, []]));
  for (let i = 0; i < runs; i++) {
    // Interleaved, the order rotated every run so no side always follows the same one.
    const order = sides.map((_, j) => sides[(i + j) % sides.length]);
    for (const name of order) all[name].push(check(name, await side(name)));
    console.log(`run ${i + 1} (${order.map((n) => label[n]).join(', ')}): ` + sides.map((n) => {
      const r = all[n][i];
      return `${label[n]} ${f0(r.ms)} ms (vision ${f0(r.vision)}, decode ${f0(r.decode)})`;
    }).join(' | '));
  }

  const med = (name) => {
    const r = all[name];
    return { ms: median(r.map((x) => x.ms)), vision: median(r.map((x) => x.vision)), decode: median(r.map((x) => x.decode)) };
  };
  const c = withCandle ? med('candle') : null;
  const line = (text, m) => `  ${text.padEnd(38)} vision ${f0(m.vision).padStart(6)} ms   per token ${(m.decode / tokens).toFixed(1).padStart(6)} ms   caption ${f0(m.ms).padStart(6)} ms`;
  const ratio = (text, m, target) => `  ${text}: caption ${(c.ms / m.ms).toFixed(2)}x (target >= ${target}x), ` +
    `vision ${(c.vision / m.vision).toFixed(2)}x, per token ${(c.decode / m.decode).toFixed(2)}x`;
  console.log(`\nmedians over ${runs} runs, RGBA ${png.width}x${png.height} frame -> bos + ${tokens} forced tokens, wasm SIMD128:`);
  console.log(line(`edgecap (wasm cpu, ${dtype}, 1 thread):`, med('edgecap')));
  if (setup.relaxed) console.log(line(`edgecap relaxed SIMD (${dtype}, 1 thread):`, med('relaxed')));
  if (setup.threaded) console.log(line(`edgecap (wasm cpu, ${dtype}, ${threads} threads):`, med('threaded')));
  if (c) {
    console.log(line(`candle quantized_blip (${dtype}, 1 thread):`, c));
    console.log(ratio('edgecap speed-up', med('edgecap'), 8) + ' (vision target >= 2.5x)');
    if (setup.relaxed) console.log(ratio('edgecap relaxed SIMD speed-up', med('relaxed'), 12));
    if (setup.threaded) console.log(ratio(`edgecap ${threads} threads speed-up`, med('threaded'), 15));
  } else if (setup.threaded) {
    const [one, many] = [med('edgecap'), med('threaded')];
    console.log(`  ${threads} threads against 1: caption ${(one.ms / many.ms).toFixed(2)}x, vision ${(one.vision / many.vision).toFixed(2)}x, per token ${(one.decode / many.decode).toFixed(2)}x`);
  }
  console.log('  (caption: wall time in JS around one call, frame in, ids out; vision and per token from each engine\'s own clock;');
  console.log('   edgecap\'s vision includes the cross-attention K/V of all decoder layers, which candle recomputes at every token)');
  const last = (name) => JSON.stringify(all[name][runs - 1].ids);
  console.log(`token ids (last run): edgecap ${last('edgecap')}`);
  for (const name of sides.slice(1)) {
    console.log(`  ${label[name]}: ${last(name) === last('edgecap') ? 'identical' : `differ: ${last(name)}`}`);
  }
  const mem = await page.evaluate(async () => ({ e: window.bench.edgecapMem(), c: window.bench.candleMem(), r: window.bench.relaxedMem?.(), t: await window.bench.threadedMem?.() }));
  console.log(`wasm memory after the runs: edgecap ${mib(mem.e)} MiB, candle ${mib(mem.c)} MiB` +
    (mem.r ? `, edgecap relaxed ${mib(mem.r)} MiB` : '') + (mem.t ? `, edgecap threaded ${mib(mem.t)} MiB` : ''));
});
