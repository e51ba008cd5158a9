#!/usr/bin/env node
// Browser long run: the built app in headless Chromium, camera in automatic mode, N captions in a
// row; wasm memory, JS heap and (on WebGPU) live GPU buffers measured after caption `--warmup` and
// after caption N, with the per-caption time. Fails when memory grows between the two points.
//
//   node tests/e2e/long-run.mjs --dist DIR --cli target/release/edgecap [--captions 200]
//        [--backend cpu|webgpu] [--warmup 10] [--interval 250] [--tolerance-mib 1]
//        [--heap-tolerance-mib 8] [--model q8_0|f32] [--timeout-min 60] [--caption-timeout S (600)]
//
// The camera is Chromium's own fake device (no --use-file-for-fake-video-capture): a sector sweeps
// round every 601 ms, so the view keeps changing and automatic mode keeps describing it (its "kept
// moving" rule, www/js/auto-mode.js: about every second look; comparing with the last view
// described alone could stop for good after a caption taken mid-sweep).
// The app runs with ?auto-interval=MS (a test setting: automatic mode looks every MS instead of
// 3 s) and ?count-gpu-buffers=1 (the worker counts GPUDevice.createBuffer minus GPUBuffer.destroy).
// Measuring pauses automatic mode (the #auto switch), waits for the caption in flight, asks the
// worker for {type:"stats"} (wasm memory, GPU buffers) and, through the DevTools protocol, collects
// garbage in the page and the worker and reads their JS heaps (Runtime.getHeapUsage).
//
// WebGPU here is SwiftShader, where one caption of the tiny model takes minutes: use a few
// captions (--captions 3 --warmup 1). `run.mjs` runs a short CPU variant as scenario long-run-cpu-20.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import { start } from './server.mjs';
import { makeFixtures } from './fixtures.mjs';
import { CHROMIUM, CHROMIUM_FLAGS, median, workerStats } from './harness.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const HOOKS = fs.readFileSync(path.join(HERE, 'page-hooks.js'), 'utf8');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const MiB = 1048576;
const mib = (b) => (b == null ? '?' : (b / MiB).toFixed(2));

function quantile(xs, q) {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

/** The JS heap in use (bytes) of one DevTools target (page or worker), after a garbage collection. */
async function heapUsed(cdp, targetId) {
  const { sessionId } = await cdp.send('Target.attachToTarget', { targetId, flatten: false });
  let next = 0;
  const waiting = new Map();
  const onMessage = (e) => {
    if (e.sessionId !== sessionId) return;
    const m = JSON.parse(e.message);
    if (waiting.has(m.id)) {
      waiting.get(m.id)(m);
      waiting.delete(m.id);
    }
  };
  cdp.on('Target.receivedMessageFromTarget', onMessage);
  const call = (method, params = {}) => new Promise((resolve, reject) => {
    const id = ++next;
    const timer = setTimeout(() => reject(new Error(`${method}: no answer`)), 30000);
    waiting.set(id, (m) => {
      clearTimeout(timer);
      if (m.error) reject(new Error(`${method}: ${m.error.message}`));
      else resolve(m.result);
    });
    cdp.send('Target.sendMessageToTarget', { sessionId, message: JSON.stringify({ id, method, params }) }).catch(reject);
  });
  try {
    await call('HeapProfiler.collectGarbage');
    return (await call('Runtime.getHeapUsage')).usedSize;
  } finally {
    cdp.off('Target.receivedMessageFromTarget', onMessage);
    await cdp.send('Target.detachFromTarget', { sessionId }).catch(() => {});
  }
}

/** JS heaps of the app's page and model worker: {page, worker} (null where not found). */
async function heaps(cdp, serverUrl) {
  const { targetInfos } = await cdp.send('Target.getTargets');
  const page = targetInfos.find((t) => t.type === 'page' && t.url.startsWith(serverUrl));
  const worker = targetInfos.find((t) => t.type === 'worker' && /\/worker\.js(\?|$)/.test(t.url));
  return {
    page: page ? await heapUsed(cdp, page.targetId).catch(() => null) : null,
    worker: worker ? await heapUsed(cdp, worker.targetId).catch(() => null) : null,
  };
}

/**
 * Runs the long run against a server already serving the app (at /) and the model (modelUrl).
 * Returns {ok, failures[], figures, lines[]} (lines: what to print).
 * opts: serverUrl, modelUrl, backend ('cpu'|'webgpu'), captions, warmup, intervalMs, toleranceBytes,
 * heapToleranceBytes, captionTimeoutMs (one caption), timeoutMs (the whole run), onClose
 * (registers a cleanup; called with an async closer), log (progress lines).
 */
export async function longRun(opts) {
  const {
    serverUrl, modelUrl, backend = 'cpu', captions = 200, warmup = 10, intervalMs = 250,
    toleranceBytes = 1 * MiB, heapToleranceBytes = 8 * MiB, captionTimeoutMs = 300000,
    timeoutMs = 3600000, log = () => {}, onClose = () => {},
  } = opts;
  if (!(captions > warmup && warmup >= 1)) throw new Error(`need captions (${captions}) > warmup (${warmup}) >= 1`);
  const flags = [...CHROMIUM_FLAGS, '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream'];
  if (backend === 'webgpu') flags.push('--enable-unsafe-webgpu');
  // A plain launch (not a persistent profile): the DevTools browser session reaches the worker.
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: flags, timeout: 60000 });
  const close = () => browser.close().catch(() => {});
  onClose(close);
  const consoleErrors = [];
  try {
    const context = await browser.newContext({ viewport: { width: 800, height: 900 } });
    const cdp = await browser.newBrowserCDPSession();
    await context.addInitScript({ content: HOOKS });
    const page = await context.newPage();
    page.on('pageerror', (e) => consoleErrors.push(`pageerror: ${e.message}`));
    page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(`console: ${m.text()}`); });
    page.on('crash', () => consoleErrors.push('page crashed'));
    page.setDefaultTimeout(30000);
    const query = `?model=${encodeURIComponent(modelUrl)}&backend=${backend}&auto-interval=${intervalMs}&count-gpu-buffers=1`;
    await page.goto(`${serverUrl}/${query}`);
    const t0 = Date.now();
    for (;;) {
      const st = await page.evaluate(() => document.body.dataset.state);
      if (st === 'ready') break;
      if (st === 'error') throw new Error(`state error while loading: ${await page.locator('#error').textContent()}`);
      if (Date.now() - t0 > 120000) throw new Error(`not ready after 120 s (state ${st})`);
      await sleep(200);
    }
    const backendShown = (await page.locator('#backend').textContent()).trim();
    if (backendShown !== backend) throw new Error(`#backend is ${backendShown}, expected ${backend}`);
    await page.waitForFunction(() => {
      const v = document.querySelector('#preview');
      return v && v.videoWidth > 0 && !v.hidden;
    }, null, { timeout: 30000 });

    const captionsSoFar = () => page.evaluate(() => {
      const m = window.__e2e.fromWorker;
      return {
        n: m.filter((x) => x.type === 'caption').length,
        error: m.find((x) => x.type === 'error') || null,
        state: document.body.dataset.state,
      };
    });
    const setAuto = async (on) => {
      if ((await page.isChecked('#auto')) !== on) await page.locator('#auto').click();
    };
    const measure = async (label) => {
      await setAuto(false);
      // The caption in flight, if any, finishes first.
      const tw = Date.now();
      while ((await page.evaluate(() => document.body.dataset.state)) !== 'ready') {
        if (Date.now() - tw > captionTimeoutMs) throw new Error(`${label}: the caption in flight did not finish`);
        await sleep(50);
      }
      await sleep(100);
      const heap = await heaps(cdp, serverUrl);
      const stats = await workerStats(page);
      const n = (await captionsSoFar()).n;
      log(`  ${label}: after caption ${n}: wasm ${mib(stats.wasmMemoryBytes)} MiB, worker JS heap ${mib(heap.worker)} MiB, page JS heap ${mib(heap.page)} MiB` +
        (stats.gpuBuffers ? `, GPU buffers live ${stats.gpuBuffers.live} (${mib(stats.gpuBuffers.liveBytes)} MiB; created ${stats.gpuBuffers.created}, destroyed ${stats.gpuBuffers.destroyed}, garbage-collected without destroy() ${stats.gpuBuffers.collectedUndestroyed})` : ''));
      return { n, wasm: stats.wasmMemoryBytes, workerHeap: heap.worker, pageHeap: heap.page, gpu: stats.gpuBuffers };
    };

    const tStart = Date.now();
    await setAuto(true);
    let first = null;
    let lastLogged = 0;
    let lastCount = 0;
    let lastChange = Date.now();
    for (;;) {
      const c = await captionsSoFar();
      if (c.error) throw new Error(`the worker answered with an error: ${c.error.code}: ${c.error.message}`);
      if (c.state === 'error') throw new Error(`state error: ${await page.locator('#error').textContent()}`);
      if (c.n !== lastCount) { lastCount = c.n; lastChange = Date.now(); }
      if (!first && c.n >= warmup) {
        first = await measure('start');
        await setAuto(true);
      } else if (c.n >= captions) {
        break;
      }
      if (c.n - lastLogged >= Math.max(1, Math.ceil(captions / 10)) || (backend === 'webgpu' && c.n !== lastLogged)) {
        lastLogged = c.n;
        log(`  ${c.n}/${captions} captions (${((Date.now() - tStart) / 1000).toFixed(0)} s)`);
      }
      if (Date.now() - lastChange > captionTimeoutMs) throw new Error(`no new caption for ${captionTimeoutMs / 1000} s (at ${c.n} of ${captions})`);
      if (Date.now() - tStart > timeoutMs) throw new Error(`${c.n} of ${captions} captions after ${timeoutMs / 1000} s`);
      await sleep(backend === 'webgpu' ? 1000 : 100);
    }
    const last = await measure('end');
    const wallS = (Date.now() - tStart) / 1000;

    const msgs = await page.evaluate(() => window.__e2e.fromWorker.filter((m) => m.type === 'caption').map((m) => ({ t: m.t, ms: m.ms, backend: m.backend, caption: m.caption })));
    const engineMs = msgs.map((m) => m.ms).filter((x) => typeof x === 'number');
    const gaps = msgs.slice(1).map((m, i) => m.t - msgs[i].t);
    const distinct = new Set(msgs.map((m) => m.caption)).size;
    const backends = [...new Set(msgs.map((m) => m.backend))];

    const failures = [];
    const wasmGrowth = last.wasm - first.wasm;
    if (wasmGrowth > toleranceBytes) failures.push(`wasm memory grew ${mib(wasmGrowth)} MiB between caption ${first.n} and ${last.n} (tolerance ${mib(toleranceBytes)} MiB)`);
    if (first.gpu && last.gpu) {
      if (last.gpu.live > first.gpu.live) failures.push(`live GPU buffers grew from ${first.gpu.live} to ${last.gpu.live}`);
      if (last.gpu.liveBytes - first.gpu.liveBytes > toleranceBytes) failures.push(`live GPU buffer bytes grew ${mib(last.gpu.liveBytes - first.gpu.liveBytes)} MiB`);
    }
    const heapGrowth = (last.pageHeap ?? 0) + (last.workerHeap ?? 0) - (first.pageHeap ?? 0) - (first.workerHeap ?? 0);
    if (heapGrowth > heapToleranceBytes) failures.push(`JS heap (page + worker, after gc) grew ${mib(heapGrowth)} MiB (tolerance ${mib(heapToleranceBytes)} MiB)`);
    if (backends.length !== 1 || backends[0] !== backend) failures.push(`captioned on ${backends.join(',')}, expected ${backend}`);
    const crashes = consoleErrors.filter((e) => /crash|out of memory|RangeError/i.test(e));
    if (crashes.length) failures.push(`errors: ${crashes.slice(0, 3).join('; ')}`);

    const figures = {
      backend,
      captions: msgs.length,
      distinctCaptions: distinct,
      first, last,
      wasmGrowth, heapGrowth,
      engineMedianMs: median(engineMs),
      engineP90Ms: quantile(engineMs, 0.9),
      gapMedianMs: median(gaps),
      wallS,
    };
    const lines = [
      `captions done: ${msgs.length} on ${backends.join(',')} (${distinct} distinct), automatic mode every ${intervalMs} ms, ${wallS.toFixed(0)} s`,
      `wasm memory: start ${first.wasm} B (${mib(first.wasm)} MiB, after caption ${first.n}), end ${last.wasm} B (${mib(last.wasm)} MiB, after caption ${last.n}), growth ${wasmGrowth} B`,
      `JS heap after a garbage collection: page ${mib(first.pageHeap)} → ${mib(last.pageHeap)} MiB, worker ${mib(first.workerHeap)} → ${mib(last.workerHeap)} MiB`,
      first.gpu
        ? `GPU buffers live (createBuffer - destroy): start ${first.gpu.live} (${mib(first.gpu.liveBytes)} MiB), end ${last.gpu.live} (${mib(last.gpu.liveBytes)} MiB); created ${last.gpu.created}, destroyed ${last.gpu.destroyed} in all; garbage-collected without destroy(): ${first.gpu.collectedUndestroyed} at start, ${last.gpu.collectedUndestroyed} at end ` +
          `(so held, neither destroyed nor collected: ${first.gpu.live - first.gpu.collectedUndestroyed} → ${last.gpu.live - last.gpu.collectedUndestroyed})`
        : 'GPU buffers: not counted (CPU backend: no WebGPU device)',
      `per caption: engine median ${median(engineMs)?.toFixed(0)} ms (p90 ${quantile(engineMs, 0.9)?.toFixed(0)} ms), caption to caption median ${median(gaps)?.toFixed(0) ?? '-'} ms`,
    ];
    const summary = `${msgs.length} captions; wasm ${mib(first.wasm)} → ${mib(last.wasm)} MiB (caption ${first.n} → ${last.n})` +
      (first.gpu ? `; GPU buffers live ${first.gpu.live} → ${last.gpu.live}` : '') +
      `; engine median ${median(engineMs)?.toFixed(0)} ms`;
    return { ok: failures.length === 0, failures, figures, lines, summary };
  } finally {
    await close();
  }
}

function options(args) {
  const { values: v } = parseArgs({
    args,
    options: {
      dist: { type: 'string' },
      cli: { type: 'string' },
      captions: { type: 'string', default: '200' },
      backend: { type: 'string', default: 'cpu' },
      warmup: { type: 'string' },
      interval: { type: 'string', default: '250' },
      'tolerance-mib': { type: 'string', default: '1' },
      'heap-tolerance-mib': { type: 'string', default: '8' },
      model: { type: 'string', default: 'q8_0' },
      'timeout-min': { type: 'string', default: '60' },
      'caption-timeout': { type: 'string', default: '600' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const a = {
    dist: v.dist,
    cli: v.cli,
    captions: Number(v.captions),
    backend: v.backend,
    warmup: v.warmup == null ? null : Number(v.warmup),
    interval: Number(v.interval),
    toleranceMib: Number(v['tolerance-mib']),
    heapToleranceMib: Number(v['heap-tolerance-mib']),
    model: v.model,
    timeoutMin: Number(v['timeout-min']),
    captionTimeoutS: Number(v['caption-timeout']),
    help: v.help,
  };
  if (a.warmup == null) a.warmup = Math.min(10, Math.max(1, Math.floor(a.captions / 2)));
  return a;
}

async function main() {
  let a;
  try {
    a = options(process.argv.slice(2));
  } catch (e) {
    console.error(e.message);
    return 2;
  }
  if (a.help || !a.dist || !a.cli || !['cpu', 'webgpu'].includes(a.backend) || !['q8_0', 'f32'].includes(a.model)) {
    console.log('usage: node tests/e2e/long-run.mjs --dist DIR --cli target/release/edgecap [--captions 200] [--backend cpu|webgpu] [--warmup 10] [--interval 250] [--tolerance-mib 1] [--heap-tolerance-mib 8] [--model q8_0|f32] [--timeout-min 60] [--caption-timeout 600]');
    return a.help ? 0 : 2;
  }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'edgecap-long-run-'));
  const fx = makeFixtures({ cli: path.resolve(a.cli), dir: path.join(tmp, 'fixtures') });
  const server = await start({ dist: path.resolve(a.dist), models: fx.modelsDir });
  const closers = [];
  const cleanup = async () => {
    for (const c of closers.reverse()) await c().catch(() => {});
    await server.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  };
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => cleanup().then(() => process.exit(130)));
  const modelUrl = `/models/tiny-${a.model}.gguf`;
  console.log(`long run: ${a.captions} captions on ${a.backend}, automatic mode every ${a.interval} ms, measured after caption ${a.warmup} and ${a.captions}; model ${modelUrl} (random weights); ${os.cpus().length} cores, load ${os.loadavg()[0].toFixed(1)}`);
  try {
    const r = await longRun({
      serverUrl: server.url, modelUrl, backend: a.backend, captions: a.captions, warmup: a.warmup, intervalMs: a.interval,
      toleranceBytes: a.toleranceMib * MiB, heapToleranceBytes: a.heapToleranceMib * MiB, timeoutMs: a.timeoutMin * 60000,
      captionTimeoutMs: a.captionTimeoutS * 1000,
      log: (l) => console.log(l), onClose: (c) => closers.push(c),
    });
    for (const l of r.lines) console.log(l);
    for (const f of r.failures) console.log(`FAIL: ${f}`);
    console.log(r.ok ? 'ok' : 'FAILED');
    return r.ok ? 0 : 1;
  } catch (e) {
    console.log(`FAILED: ${e.message}`);
    return 1;
  } finally {
    await cleanup();
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().then((code) => {
    process.exitCode = code;
    setTimeout(() => process.exit(code), 2000).unref();
  });
}
