// Where edgecap's wasm CPU path spends a caption: Chromium's sampling profiler (CDP) around one
// caption after a warm-up, self time per wasm function (names from the wasm name section). This
// is how the SIMD128 exp/GELU, the activation quantizer and the GEMM's chunk size were found.
//
//   node benches/web/wasm_profile.mjs [--tokens 20] [--model FILE.gguf] [--top 25]
//
// Uses pkg/ as it is (bash scripts/build-pkg.sh first) and the full-size random model that
// `cargo bench --bench cpu_speed` writes. Profiling slows the run a little; the times it prints
// are for finding hot spots, the speed figures come from wasm_speed.mjs.
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { ensureE2eDeps } from './e2e-deps.mjs';
import { decodePng } from '../../tests/e2e/png.mjs';

ensureE2eDeps();
const { withBrowser } = await import('../../tests/e2e/harness.mjs');

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const { values } = parseArgs({
  options: {
    tokens: { type: 'string', default: '20' },
    top: { type: 'string', default: '25' },
    model: { type: 'string', default: path.join(REPO, 'target/bench-models/blip-base-random-q8_0.gguf') },
  },
});
const tokens = Number(values.tokens);
const model = path.resolve(values.model);
if (!fs.existsSync(model)) throw new Error(`${model} is missing: \`cargo bench --bench cpu_speed\` writes it`);
if (!fs.existsSync(path.join(REPO, 'pkg/edgecap.js'))) throw new Error('pkg/ is missing: bash scripts/build-pkg.sh');
const png = decodePng(fs.readFileSync(path.join(REPO, 'tests/fixtures/images/synthetic_384x384.png')));

await withBrowser({ dist: REPO, models: path.dirname(model) }, async ({ browser, server }) => {
  const page = await browser.newPage();
  page.on('pageerror', (e) => console.error(`page error: ${e.message}`));
  await page.goto(`${server.url}/benches/web/wasm_speed.html`);
  await page.evaluate(async ({ url, frame, width, height }) => {
    const edgecap = await import('/pkg/edgecap.js');
    await edgecap.default();
    const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
    const engine = await edgecap.Engine.fromBytes(bytes, 'cpu');
    window.bench = { engine, frame: Uint8Array.from(atob(frame), (c) => c.charCodeAt(0)), width, height };
  }, { url: `/models/${path.basename(model)}`, frame: Buffer.from(png.rgba).toString('base64'), width: png.width, height: png.height });
  const caption = () => page.evaluate(async (tokens) => {
    const { engine, frame, width, height } = window.bench;
    const t = performance.now();
    const r = await engine.captionWith(frame, width, height, { minTokens: tokens, maxTokens: tokens });
    return { ms: performance.now() - t, vision: r.timingsMs.vision, decode: r.timingsMs.decode };
  }, tokens);
  const f0 = (x) => x.toFixed(0);
  const warm = await caption();
  console.log(`warm-up: ${f0(warm.ms)} ms (vision ${f0(warm.vision)}, decode ${f0(warm.decode)})`);

  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Profiler.enable');
  await cdp.send('Profiler.setSamplingInterval', { interval: 500 });
  await cdp.send('Profiler.start');
  const run = await caption();
  const { profile } = await cdp.send('Profiler.stop');
  console.log(`profiled: ${f0(run.ms)} ms (vision ${f0(run.vision)}, decode ${f0(run.decode)}, ${tokens} tokens)`);

  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  profile.samples.forEach((id, i) => {
    const name = byId.get(id).callFrame.functionName || '(anonymous)';
    self.set(name, (self.get(name) || 0) + (profile.timeDeltas[i] || 0));
  });
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  console.log('self time  share  function');
  for (const [name, us] of [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, Number(values.top))) {
    // Drop the Rust symbol hash; closures keep their (generic) names.
    console.log(`${f0(us / 1000).padStart(6)} ms ${(100 * us / total).toFixed(1).padStart(5)}%  ${name.replace(/::h[0-9a-f]{16}$/, '').slice(0, 140)}`);
  }
});
