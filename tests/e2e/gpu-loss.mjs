// Chromium scenarios about a lost GPU device and the GPU memory an engine holds (registered by
// run.mjs, which passes its helpers). WebKit loses every device under memory pressure and iOS
// refuses GPU work from the background; the worker's rule (www/js/protocol.js): the first loss
// in a worker's life gets a fresh adapter and device, a later one the CPU.
//   gpu-lost-at-load-once                 ?lose-gpu-at-load=1 → ready on WebGPU after one fresh device
//   gpu-lost-at-load-twice                ?lose-gpu-at-load=2 → ready on the CPU, "ready" says why
//   gpu-lost-during-caption-retries-webgpu  a loss before a caption → the caption on a fresh WebGPU
//                                         device, #backend stays webgpu (slow: SwiftShader captions)
//   gpu-buffers-freed                     ?count-gpu-buffers=1: no live GPU buffer after the fall-back
//                                         to the CPU, nor after a model delete; none left to the GC
// (run.mjs's gpu-lost-falls-back-to-cpu: lost twice during a caption → the CPU.)
import { workerStats } from './harness.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Keeps whole copies of the worker's answers (page-hooks.js keeps only their flat fields).
export const FULL_MESSAGES = `(() => {
  const W = window.Worker;
  if (!W || window.__fullFromWorker) return;
  const full = (window.__fullFromWorker = []);
  window.Worker = class extends W {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (e) => {
        const d = e.data;
        if (d && d.type !== 'progress') full.push(JSON.parse(JSON.stringify(d)));
      });
    }
  };
})();`;

/** The worker's messages of `type` so far, whole. */
export function messages(page, type) {
  return page.evaluate((type) => window.__fullFromWorker.filter((m) => m.type === type), type);
}

/** Waits until the worker has sent `count` messages of `type`; returns them. */
export async function waitMessages(page, type, count = 1, timeout = 60000) {
  const t0 = Date.now();
  for (;;) {
    const got = await messages(page, type);
    if (got.length >= count) return got;
    if (Date.now() - t0 > timeout) throw new Error(`${count} '${type}' message(s) from the worker expected in ${timeout} ms, got ${got.length}`);
    await sleep(100);
  }
}

/** Posts {type} to the app's worker and resolves with its answer of the same type. */
export function ask(page, type, timeoutMs = 30000) {
  return page.evaluate(({ type, timeoutMs }) => new Promise((resolve, reject) => {
    const w = window.edgecap.worker;
    const t = setTimeout(() => reject(new Error(`the worker did not answer {type:"${type}"}`)), timeoutMs);
    const on = (e) => {
      if (!e.data || e.data.type !== type) return;
      clearTimeout(t);
      w.removeEventListener('message', on);
      resolve(e.data);
    };
    w.addEventListener('message', on);
    w.postMessage({ type });
  }), { type, timeoutMs });
}

/** Live GPU buffers of the worker (count-gpu-buffers=1), after its garbage collector ran, so that
 *  buffers dropped without destroy() show in collectedUndestroyed. */
async function gpuBuffersAfterGc(page) {
  const worker = page.workers().find((w) => /\/worker\.js(\?|$)/.test(w.url()));
  if (!worker) throw new Error('no model worker found');
  // gc is there with Chromium's --js-flags=--expose-gc.
  const collected = await worker.evaluate(() => { if (typeof gc !== 'function') return false; gc(); return true; });
  if (!collected) throw new Error('gc() is missing in the worker: no --js-flags=--expose-gc?');
  await sleep(500);  // FinalizationRegistry callbacks run after the collection
  const { gpuBuffers } = await workerStats(page);
  if (!gpuBuffers) throw new Error('the worker does not count GPU buffers: was it started with count-gpu-buffers=1?');
  return gpuBuffers;
}

function describe(g) {
  return `${g.live} live GPU buffers (${g.liveBytes} B) of ${g.created} created, ${g.collectedUndestroyed} collected undestroyed`;
}

/** Throws unless every GPU buffer the worker made has been destroyed. */
function expectNoLiveBuffers(g, when) {
  if (g.created === 0) throw new Error(`${when}: the worker never created a GPU buffer (was WebGPU used?)`);
  if (g.live !== 0 || g.liveBytes !== 0) throw new Error(`${when}: ${describe(g)}`);
  // Destroyed before the engine let go of them, so the collector finds none still holding memory.
  if (g.collectedUndestroyed > 2) throw new Error(`${when}: ${describe(g)}`);
}

export function registerGpuLossScenarios(h) {
  const { scenario, withChromium, waitState, captureOnce, backendOf, cliNote, MODEL_URL } = h;
  const chromium = (S, fn) => withChromium(S, { webgpu: true, initScript: FULL_MESSAGES, flags: ['--js-flags=--expose-gc'] }, fn);

  scenario('gpu-lost-at-load-once', async (S) => chromium(S, async ({ page }) => {
    await page.goto(`${S.server.url}/?model=${MODEL_URL}&lose-gpu-at-load=1`);
    await waitState(page, 'ready', { timeout: 90000 });
    const backend = await backendOf(page);
    const [ready] = await messages(page, 'ready');
    if (backend !== 'webgpu' || ready.backend !== 'webgpu') throw new Error(`#backend ${backend}, ready ${JSON.stringify(ready)}: expected webgpu after one fresh device`);
    if (ready.fallback) throw new Error(`ready says it fell back: ${JSON.stringify(ready.fallback)}`);
    const d = await ask(page, 'diagnostics');
    if (!d.engine || d.engine.gpuRetries !== 1 || d.engine.backend !== 'webgpu') throw new Error(`diagnostics engine ${JSON.stringify(d.engine)}: expected webgpu, gpuRetries 1`);
    const limits = d.webgpu && d.webgpu.limits ? Object.keys(d.webgpu.limits).length : 0;
    if (!d.webgpu || d.webgpu.available !== true || limits !== 5) throw new Error(`diagnostics webgpu ${JSON.stringify(d.webgpu)}: expected an adapter with 5 limits`);
    if (!d.model || d.model.size !== ready.model.size || !d.storage || d.storage.opfs !== true) throw new Error(`diagnostics model ${JSON.stringify(d.model)}, storage ${JSON.stringify(d.storage)}`);
    return `device lost right after the first load → a fresh device: ready on ${ready.adapter}; #backend webgpu; diagnostics: gpuRetries ${d.engine.gpuRetries}, adapter ${JSON.stringify(d.webgpu.description || d.webgpu.vendor)} with ${d.webgpu.features.length} features, maxBufferSize ${d.webgpu.limits.maxBufferSize}, storage ${JSON.stringify(d.storage)}`;
  }));

  scenario('gpu-lost-at-load-twice', async (S) => chromium(S, async ({ page }) => {
    await page.goto(`${S.server.url}/?model=${MODEL_URL}&lose-gpu-at-load=2`);
    await waitState(page, 'ready', { timeout: 90000 });
    const backend = await backendOf(page);
    const [ready] = await messages(page, 'ready');
    if (backend !== 'cpu' || ready.backend !== 'cpu') throw new Error(`#backend ${backend}, ready ${JSON.stringify(ready)}: expected the CPU after two losses`);
    if (!ready.fallback || ready.fallback.from !== 'webgpu' || !ready.fallback.reason) throw new Error(`ready has no fallback {from: "webgpu", reason}: ${JSON.stringify(ready)}`);
    const errors = await messages(page, 'error');
    if (errors.length) throw new Error(`the worker reported errors: ${JSON.stringify(errors)}`);
    const r = await captureOnce(page);
    if (r.backend !== 'cpu') throw new Error(`captioned on ${r.backend}`);
    const [said] = await messages(page, 'caption');
    const { lastCaption } = await ask(page, 'diagnostics');
    const t = said.timingsMs;
    if (!t || !(t.total > 0) || t.preprocess + t.vision + t.decode > t.total + 1) throw new Error(`caption timingsMs ${JSON.stringify(t)}`);
    if (!lastCaption || lastCaption.backend !== 'cpu' || JSON.stringify(lastCaption.timingsMs) !== JSON.stringify(t)) throw new Error(`diagnostics lastCaption ${JSON.stringify(lastCaption)} for a caption with ${JSON.stringify(t)}`);
    return `lost twice at load → ready on the CPU with fallback ${JSON.stringify(ready.fallback).slice(0, 160)}; a caption on the CPU in ${Math.round(t.total)} ms (timingsMs, also diagnostics' lastCaption)`;
  }));

  scenario('gpu-lost-during-caption-retries-webgpu', async (S) => chromium(S, async ({ page }) => {
    // ?backend=webgpu: the page's 45 s GPU watchdog (backend auto only) would cut SwiftShader short.
    await page.goto(`${S.server.url}/?model=${MODEL_URL}&backend=webgpu`);
    await waitState(page, 'ready', { timeout: 90000 });
    if ((await backendOf(page)) !== 'webgpu') throw new Error(`#backend is ${await backendOf(page)} before the loss`);
    await page.evaluate(() => window.edgecap.worker.postMessage({ type: 'test-lose-device' }));
    const r = await captureOnce(page, { timeout: S.captionTimeoutMs });
    const [change] = await messages(page, 'backend');
    if (!change || change.backend !== 'webgpu' || change.retried !== true) throw new Error(`expected {type: "backend", backend: "webgpu", retried: true}, got ${JSON.stringify(change)}`);
    if (r.backend !== 'webgpu') throw new Error(`the caption came from ${r.backend}`);
    const backend = await backendOf(page);
    if (backend !== 'webgpu') throw new Error(`#backend is ${JSON.stringify(backend)} after one loss`);
    return `lost before a caption → a fresh device (${change.adapter}); caption ${JSON.stringify(r.caption)} on webgpu ${await cliNote(S, page, r, 'gpu')}; #backend webgpu`;
  }), { timeoutMs: 420000 });

  scenario('gpu-buffers-freed', async (S) => chromium(S, async ({ page }) => {
    // Two losses at load: both GPU engines made buffers, and both must have destroyed them all.
    await page.goto(`${S.server.url}/?model=${MODEL_URL}&count-gpu-buffers=1&lose-gpu-at-load=2`);
    await waitState(page, 'ready', { timeout: 90000 });
    if ((await backendOf(page)) !== 'cpu') throw new Error(`#backend is ${await backendOf(page)}: expected the CPU after two losses at load`);
    const fallen = await gpuBuffersAfterGc(page);
    expectNoLiveBuffers(fallen, 'on the CPU after the fall-back');
    // The stored model on WebGPU, then deleted.
    await page.goto(`${S.server.url}/?count-gpu-buffers=1`);
    await waitState(page, 'ready', { timeout: 90000 });
    if ((await backendOf(page)) !== 'webgpu') throw new Error(`#backend is ${await backendOf(page)}: expected webgpu`);
    const loaded = (await workerStats(page)).gpuBuffers;
    if (!(loaded.live > 0 && loaded.liveBytes > 0)) throw new Error(`loaded on WebGPU with ${describe(loaded)}`);
    await page.evaluate(() => window.edgecap.worker.postMessage({ type: 'delete' }));
    await waitMessages(page, 'deleted');
    const deleted = await gpuBuffersAfterGc(page);
    expectNoLiveBuffers(deleted, 'after the model was deleted');
    return `fall-back to the CPU: ${describe(fallen)}; loaded on WebGPU: ${loaded.live} live (${loaded.liveBytes} B); after delete: ${describe(deleted)}`;
  }));
}
