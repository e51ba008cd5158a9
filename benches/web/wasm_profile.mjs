// Where edgecap's wasm CPU path spends a caption: Chromium's sampling profiler (CDP) around one
// caption after a warm-up, self time per wasm function (names from the wasm name section). This
// is how the SIMD128 exp/GELU, the activation quantizer and the GEMM's chunk size were found.
//
//   node benches/web/wasm_profile.mjs [--tokens 20] [--model FILE.gguf] [--top 25] [--threads N]
//
// Uses pkg/ as it is (bash scripts/build-pkg.sh first) and the full-size random model that
// `cargo bench --bench cpu_speed` writes. Profiling slows the run a little; the times it prints
// are for finding hot spots, the speed figures come from wasm_speed.mjs. `--threads N` profiles
// the threaded build (pkg-threads/, scripts/build-pkg-threads.sh) on N pool workers instead: it
// runs in a dedicated worker as in wasm_speed.mjs, and every worker (the pool's are nested in it)
// is profiled through its own CDP session, their self times summed (the engine's worker shows
// its wait for the pool as `Condvar::wait`).
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
    threads: { type: 'string', default: '0' },
  },
});
const tokens = Number(values.tokens);
const threads = Number(values.threads);
const model = path.resolve(values.model);
if (!fs.existsSync(model)) throw new Error(`${model} is missing: \`cargo bench --bench cpu_speed\` writes it`);
if (!fs.existsSync(path.join(REPO, 'pkg/edgecap.js'))) throw new Error('pkg/ is missing: bash scripts/build-pkg.sh');
if (threads > 0 && !fs.existsSync(path.join(REPO, 'pkg-threads/edgecap.js'))) throw new Error('pkg-threads/ is missing: bash scripts/build-pkg-threads.sh');
const png = decodePng(fs.readFileSync(path.join(REPO, 'tests/fixtures/images/synthetic_384x384.png')));

/**
 * CDP sessions of every worker under `page` (nested ones too), reached through
 * Target.sendMessageToTarget, since a playwright CDP session talks to its page only.
 * Returns {workers: sessionId[], send(sessionId, method, params)}.
 */
async function workerSessions(cdp) {
  const parents = new Map();  // sessionId -> parent sessionId (null for the page's own workers)
  const pending = new Map();
  let nextId = 1;
  const post = (sid, msg) => {
    const parent = parents.get(sid);
    if (parent === null) return cdp.send('Target.sendMessageToTarget', { sessionId: sid, message: JSON.stringify(msg) });
    return post(parent, { id: nextId++, method: 'Target.sendMessageToTarget', params: { sessionId: sid, message: JSON.stringify(msg) } });
  };
  const send = (sid, method, params = {}) => new Promise((resolve, reject) => {
    const id = nextId++;
    pending.set(id, { resolve, reject });
    post(sid, { id, method, params }).catch(reject);
  });
  const attached = (params, parent) => {
    parents.set(params.sessionId, parent);
    send(params.sessionId, 'Target.setAutoAttach', { autoAttach: true, waitForDebuggerOnStart: false, flatten: false }).catch(() => {});
  };
  const received = (sid, m) => {
    if (m.id !== undefined && pending.has(m.id)) {
      const p = pending.get(m.id);
      pending.delete(m.id);
      if (m.error) p.reject(new Error(`${m.error.message} (session ${sid})`));
      else p.resolve(m.result);
    } else if (m.method === 'Target.attachedToTarget') attached(m.params, sid);
    else if (m.method === 'Target.receivedMessageFromTarget') received(m.params.sessionId, JSON.parse(m.params.message));
  };
  cdp.on('Target.attachedToTarget', (p) => attached(p, null));
  cdp.on('Target.receivedMessageFromTarget', (e) => received(e.sessionId, JSON.parse(e.message)));
  await cdp.send('Target.setAutoAttach', { autoAttach: true, waitForDebuggerOnStart: false, flatten: false });
  return { workers: () => [...parents.keys()], send };
}

/** Self time per function name (µs) of a CDP profile, added into `into`. */
function addSelfTimes(profile, into) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  profile.samples.forEach((id, i) => {
    const name = byId.get(id).callFrame.functionName || '(anonymous)';
    into.set(name, (into.get(name) || 0) + (profile.timeDeltas[i] || 0));
  });
}

// Cross-origin isolated (COOP/COEP) for the threaded build's shared memory.
await withBrowser({ dist: REPO, models: path.dirname(model), coi: threads > 0 }, async ({ browser, server }) => {
  const page = await browser.newPage();
  page.on('pageerror', (e) => console.error(`page error: ${e.message}`));
  const cdp = await page.context().newCDPSession(page);
  const sessions = threads > 0 ? await workerSessions(cdp) : null;
  await page.goto(`${server.url}/benches/web/wasm_speed.html`);
  await page.evaluate(async ({ url, frame, width, height, threads }) => {
    const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
    const b = Uint8Array.from(atob(frame), (c) => c.charCodeAt(0));
    if (threads > 0) {
      const worker = new Worker('/benches/web/wasm_speed_worker.js', { type: 'module' });
      const ask = (msg) => new Promise((resolve, reject) => {
        worker.onmessage = ({ data }) => (data.type === 'error' ? reject(new Error(data.message)) : resolve(data));
        worker.postMessage(msg);
      });
      await ask({ type: 'load', bytes, threads });
      window.bench = { frame: b, width, height, caption: (opts) => ask({ type: 'caption', frame: b, width, height, opts }) };
      return;
    }
    const edgecap = await import('/pkg/edgecap.js');
    await edgecap.default();
    const engine = await edgecap.Engine.fromBytes(bytes, 'cpu');
    window.bench = {
      caption: async (opts) => {
        const r = await engine.captionWith(b, width, height, opts);
        return { vision: r.timingsMs.vision, decode: r.timingsMs.decode };
      },
    };
  }, { url: `/models/${path.basename(model)}`, frame: Buffer.from(png.rgba).toString('base64'), width: png.width, height: png.height, threads });
  const caption = () => page.evaluate(async (tokens) => {
    const t = performance.now();
    const r = await window.bench.caption({ minTokens: tokens, maxTokens: tokens });
    return { ms: performance.now() - t, vision: r.vision, decode: r.decode };
  }, tokens);
  const f0 = (x) => x.toFixed(0);
  const warm = await caption();
  console.log(`warm-up: ${f0(warm.ms)} ms (vision ${f0(warm.vision)}, decode ${f0(warm.decode)})`);

  // The page itself, or every worker (the engine's and the pool's).
  const targets = sessions ? sessions.workers() : [null];
  const send = (sid, method, params) => (sid === null ? cdp.send(method, params) : sessions.send(sid, method, params));
  for (const sid of targets) {
    await send(sid, 'Profiler.enable');
    await send(sid, 'Profiler.setSamplingInterval', { interval: 500 });
    await send(sid, 'Profiler.start');
  }
  const run = await caption();
  const self = new Map();
  for (const sid of targets) addSelfTimes((await send(sid, 'Profiler.stop')).profile, self);
  console.log(`profiled: ${f0(run.ms)} ms (vision ${f0(run.vision)}, decode ${f0(run.decode)}, ${tokens} tokens)` +
    (sessions ? `; ${targets.length} workers, self times summed` : ''));

  const total = [...self.values()].reduce((a, b) => a + b, 0);
  console.log('self time  share  function');
  for (const [name, us] of [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, Number(values.top))) {
    // Drop the Rust symbol hash and crate disambiguators; closures keep their (generic) names.
    console.log(`${f0(us / 1000).padStart(6)} ms ${(100 * us / total).toFixed(1).padStart(5)}%  ${name.replace(/::h[0-9a-f]{16}$/, '').replace(/\[[0-9a-f]{6,}\]/g, '').slice(0, 140)}`);
  }
});
