#!/usr/bin/env node
// Memory budget of the web app with the full-size BLIP-base (random weights, q8_0) in headless
// Chromium: how much memory an iPhone would have to give the tab. Two phases, each in a fresh page
// of one browser (the model is stored in OPFS by the first and read from there by the second):
//
//   1. webgpu-load   download + load onto WebGPU (SwiftShader here); no caption (on a software GPU
//                    one takes many minutes).                                       budget 700 MB
//   2. gpu-loss-cpu  load with ?lose-gpu-at-load=2 (the worker's first two GPU loads lose the
//                    device: GPU, lost, fresh GPU, lost, CPU), then N Describe taps on the CPU
//                    (Chromium's fake camera). A worker without that setting stays on WebGPU:
//                    then {type:"test-lose-device"} is posted and the taps go on until #backend
//                    says cpu (the first caption after a loss falls back).         budget 900 MB
//
// Measured during each phase, every --sample-ms: the worker's {type:"stats"} reply (wasm memory;
// live GPU buffer bytes, ?count-gpu-buffers=1: createBuffer minus destroy, so buffers that were
// only dropped still count) and, through the DevTools protocol, Runtime.getHeapUsage of the page
// and of the worker (used JS heap, no forced garbage collection). Total = the four at one moment
// (each its latest value); the peak of that is held against the budget (MB = 10^6 bytes).
// Not counted: Chromium's own processes, the GPU process, decoded camera frames.
//
//   node benches/web/memory_budget.mjs [--dist DIR] [--model FILE.gguf] [--captions 20]
//        [--budget-webgpu-mb 700] [--budget-cpu-mb 900] [--backend auto|webgpu] [--sample-ms 250]
//        [--phase-timeout-s 600] [--caption-timeout-s 300] [--phases webgpu-load,gpu-loss-cpu]
//
// --dist: a `trunk build` output (default: builds one into a temporary folder). --model: default
// target/bench-models/blip-base-random-q8_0.gguf, built when missing by
// `CAPTIONS=2 BACKENDS=cpu MODEL=base cargo bench --bench long_run` (benches/support/mod.rs;
// about a minute). Its weights are random: its words are noise and are never printed.
// Exit status: 0 within budget, 1 over budget or a phase failed, 2 bad arguments.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ensureE2eDeps } from './e2e-deps.mjs';
import { start } from '../../tests/e2e/server.mjs';

ensureE2eDeps();
const { CHROMIUM, CHROMIUM_FLAGS } = await import('../../tests/e2e/harness.mjs');

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
// playwright-core is installed for tests/e2e (npm ci there).
const { chromium } = createRequire(path.join(REPO, 'tests/e2e/package.json'))('playwright-core');
const MiB = 1048576;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const mib = (b) => (b == null ? '-' : (b / MiB).toFixed(0));

function options(args) {
  const { values: v } = parseArgs({
    args,
    options: {
      dist: { type: 'string' },
      model: { type: 'string' },
      captions: { type: 'string', default: '20' },
      'budget-webgpu-mb': { type: 'string', default: '700' },
      'budget-cpu-mb': { type: 'string', default: '900' },
      backend: { type: 'string', default: 'auto' },
      'sample-ms': { type: 'string', default: '250' },
      'phase-timeout-s': { type: 'string', default: '600' },
      'caption-timeout-s': { type: 'string', default: '300' },
      phases: { type: 'string', default: 'webgpu-load,gpu-loss-cpu' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const a = {
    dist: v.dist == null ? null : path.resolve(v.dist),
    model: v.model == null ? null : path.resolve(v.model),
    captions: Number(v.captions),
    budgetWebgpuMb: Number(v['budget-webgpu-mb']),
    budgetCpuMb: Number(v['budget-cpu-mb']),
    backend: v.backend,
    sampleMs: Number(v['sample-ms']),
    phaseTimeoutS: Number(v['phase-timeout-s']),
    captionTimeoutS: Number(v['caption-timeout-s']),
    phases: v.phases,
    help: v.help,
  };
  if (!['auto', 'webgpu'].includes(a.backend)) throw new Error('--backend must be auto or webgpu');
  if (!(a.captions >= 1) || !(a.sampleMs >= 20)) throw new Error('--captions must be at least 1 and --sample-ms at least 20');
  return a;
}

function targetDir() {
  if (process.env.CARGO_TARGET_DIR) return path.resolve(process.env.CARGO_TARGET_DIR);
  try {
    return JSON.parse(execFileSync('cargo', ['metadata', '--format-version', '1', '--no-deps'], { cwd: REPO, stdio: ['ignore', 'pipe', 'ignore'] })).target_directory;
  } catch {
    return path.join(REPO, 'target');
  }
}

/** The full-size random BLIP-base q8_0, built by the long_run bench's support code when missing. */
function benchModel() {
  const file = path.join(targetDir(), 'bench-models', 'blip-base-random-q8_0.gguf');
  if (fs.existsSync(file)) return file;
  console.log(`${file} is missing: building it (CAPTIONS=2 BACKENDS=cpu MODEL=base cargo bench --bench long_run) ...`);
  // The bench builds the model first (benches/support/mod.rs), then captions twice; its own
  // verdict on memory growth does not matter here, only that the file is there afterwards.
  spawnSync('cargo', ['bench', '--bench', 'long_run'], {
    cwd: REPO, stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, CAPTIONS: '2', BACKENDS: 'cpu', MODEL: 'base' },
  });
  if (!fs.existsSync(file)) throw new Error(`${file} is still missing after the bench ran`);
  return file;
}

function buildDist() {
  const dist = fs.mkdtempSync(path.join(os.tmpdir(), 'edgecap-memory-dist-'));
  console.log(`building the app: trunk build --dist ${dist}`);
  execFileSync('trunk', ['build', '--dist', dist], { cwd: REPO, stdio: ['ignore', 'ignore', 'inherit'] });
  return dist;
}

// In the page, before any app script: asks the current model worker for {type:"stats"} every
// `ms` and keeps the latest and peak figures, and records the worker's ready/backend/caption/error
// messages (type, backend and timings only). Follows the worker if the app replaces it.
const PAGE_PROBE = (ms) => `(() => {
  const M = window.__mem = { wasm: 0, gpu: 0, peakWasm: 0, peakGpu: 0, replies: 0, events: [], worker: null };
  const on = (e) => {
    const d = e.data;
    if (!d || typeof d !== 'object') return;
    if (d.type === 'stats') {
      M.replies++;
      M.wasm = d.wasmMemoryBytes || 0;
      M.gpu = (d.gpuBuffers && d.gpuBuffers.liveBytes) || 0;
      M.gpuLive = d.gpuBuffers ? d.gpuBuffers.live : null;
      M.peakWasm = Math.max(M.peakWasm, M.wasm);
      M.peakGpu = Math.max(M.peakGpu, M.gpu);
    } else if (['ready', 'backend', 'caption', 'error', 'notice'].includes(d.type)) {
      M.events.push({ t: performance.now(), type: d.type, backend: d.backend, adapter: d.adapter, ms: d.ms,
        code: d.code, message: d.type === 'caption' ? undefined : (d.message || d.reason) });
    }
  };
  setInterval(() => {
    const w = window.edgecap && window.edgecap.worker;
    if (!w) return;
    if (w !== M.worker) { M.worker = w; w.addEventListener('message', on); }
    try { w.postMessage({ type: 'stats' }); } catch {}
  }, ${ms});
})();`;

/**
 * JS heaps of the page and its model worker through the browser's DevTools session: each target
 * is attached once; a request is sent every tick unless the last one is still unanswered (a worker
 * busy in wasm answers late), so sampling never waits on it.
 */
class HeapSampler {
  constructor(cdp, serverUrl) {
    this.cdp = cdp;
    this.serverUrl = serverUrl;
    this.sessions = new Map();  // targetId -> {sessionId, kind, pending, last, peak}
    this.next = 0;
    this.waiting = new Map();   // message id -> session
    this.onMessage = (e) => {
      const m = JSON.parse(e.message);
      const s = this.waiting.get(m.id);
      if (!s || s.sessionId !== e.sessionId) return;
      this.waiting.delete(m.id);
      s.pending = false;
      if (m.result && typeof m.result.usedSize === 'number') {
        s.last = m.result.usedSize;
        s.peak = Math.max(s.peak, s.last);
      }
    };
    cdp.on('Target.receivedMessageFromTarget', this.onMessage);
  }

  async tick() {
    const { targetInfos } = await this.cdp.send('Target.getTargets');
    const wanted = targetInfos.filter((t) => (t.type === 'page' && t.url.startsWith(this.serverUrl)) ||
      (t.type === 'worker' && /\/worker\.js(\?|$)/.test(t.url)));
    for (const t of wanted) {
      if (this.sessions.has(t.targetId)) continue;
      const s = { kind: t.type, pending: false, last: 0, peak: 0, sessionId: null };
      this.sessions.set(t.targetId, s);
      try {
        s.sessionId = (await this.cdp.send('Target.attachToTarget', { targetId: t.targetId, flatten: false })).sessionId;
      } catch { /* gone already */ }
    }
    const alive = new Set(targetInfos.map((t) => t.targetId));
    for (const [id, s] of this.sessions) {
      if (!alive.has(id)) { s.gone = true; s.last = 0; continue; }
      if (!s.sessionId || s.pending) continue;
      const mid = ++this.next;
      s.pending = true;
      this.waiting.set(mid, s);
      this.cdp.send('Target.sendMessageToTarget', { sessionId: s.sessionId, message: JSON.stringify({ id: mid, method: 'Runtime.getHeapUsage' }) })
        .catch(() => { s.pending = false; });
    }
  }

  /** {page, worker}: latest used heap bytes of the live targets of each kind. */
  latest() {
    const out = { page: 0, worker: 0 };
    for (const s of this.sessions.values()) if (!s.gone) out[s.kind] += s.last;
    return out;
  }

  async close() {
    this.cdp.off('Target.receivedMessageFromTarget', this.onMessage);
    for (const s of this.sessions.values()) {
      if (s.sessionId && !s.gone) await this.cdp.send('Target.detachFromTarget', { sessionId: s.sessionId }).catch(() => {});
    }
  }
}

/** Samples a page until stop() (every sampleMs): peaks of each part and of their sum at one moment. */
function sampler(page, cdp, serverUrl, sampleMs) {
  const heaps = new HeapSampler(cdp, serverUrl);
  const peak = { wasm: 0, gpu: 0, heap: 0, total: 0, samples: 0, at: null };
  let running = true;
  let stopped = null;
  const loop = (async () => {
    while (running) {
      try {
        await heaps.tick();
        const m = await page.evaluate(() => window.__mem && { wasm: window.__mem.wasm, gpu: window.__mem.gpu, peakWasm: window.__mem.peakWasm, peakGpu: window.__mem.peakGpu });
        if (m) {
          const h = heaps.latest();
          const heap = h.page + h.worker;
          const total = m.wasm + m.gpu + heap;
          peak.wasm = Math.max(peak.wasm, m.peakWasm);
          peak.gpu = Math.max(peak.gpu, m.peakGpu);
          peak.heap = Math.max(peak.heap, heap);
          if (total > peak.total) {
            peak.total = total;
            peak.at = { wasm: m.wasm, gpu: m.gpu, pageHeap: h.page, workerHeap: h.worker };
          }
          peak.samples++;
        }
      } catch { /* the page is navigating or closing */ }
      await sleep(sampleMs);
    }
  })();
  return {
    peak,
    stop() {
      running = false;
      stopped = stopped || loop.then(() => heaps.close()).then(() => peak);
      return stopped;
    },
  };
}

async function waitFor(page, fn, { timeoutMs, what, arg }) {
  const t0 = Date.now();
  for (;;) {
    const v = await page.evaluate(fn, arg);
    if (v) return v;
    const st = await page.evaluate(() => document.body.dataset.state);
    if (st === 'error') throw new Error(`the app shows an error while waiting for ${what}: ${(await page.locator('#error').textContent()).trim()}`);
    if (Date.now() - t0 > timeoutMs) throw new Error(`${what}: not after ${Math.round(timeoutMs / 1000)} s (state ${st})`);
    await sleep(200);
  }
}

const backendShown = (page) => page.evaluate(() => (document.querySelector('#backend')?.textContent || '').trim());
const events = (page) => page.evaluate(() => window.__mem.events);
const cameraLive = (page) => page.evaluate(() => {
  const v = document.querySelector('#preview');
  return !!v && v.videoWidth > 0 && !v.hidden;
});

async function openApp(context, serverUrl, query) {
  const page = await context.newPage();
  page.setDefaultTimeout(30000);
  page.on('pageerror', (e) => console.log(`  page error: ${e.message}`));
  page.on('crash', () => console.log('  the page crashed'));
  await page.goto(`${serverUrl}/?${query}`);
  return page;
}

/** Waits for state "ready", printing each state change and worker event on the way. */
async function waitReady(page, timeoutMs) {
  const t0 = Date.now();
  let lastState = null;
  let seen = 0;
  for (;;) {
    const { state, evs } = await page.evaluate(() => ({ state: document.body.dataset.state, evs: window.__mem ? window.__mem.events : [] }));
    const at = `${((Date.now() - t0) / 1000).toFixed(0)} s`;
    if (state !== lastState) { console.log(`  ${at}: state ${state}`); lastState = state; }
    for (const e of evs.slice(seen)) console.log(`  ${at}: worker ${e.type}${e.backend ? ` ${e.backend}` : ''}${e.message ? `: ${e.message}` : ''}`);
    seen = evs.length;
    if (state === 'ready') return (Date.now() - t0) / 1000;
    if (state === 'error') throw new Error(`the app shows an error while loading: ${(await page.locator('#error').textContent()).trim()}`);
    if (Date.now() - t0 > timeoutMs) throw new Error(`not ready after ${Math.round(timeoutMs / 1000)} s (state ${state})`);
    await sleep(250);
  }
}

/** Phase 1: download and load onto WebGPU; a few seconds more so late uploads are counted. */
async function phaseWebgpuLoad(S) {
  const page = await openApp(S.context, S.server.url, `model=${encodeURIComponent(S.modelUrl)}&backend=${S.args.backend}&count-gpu-buffers=1`);
  const smp = sampler(page, S.cdp, S.server.url, S.args.sampleMs);
  const notes = [];
  try {
    const loadS = await waitReady(page, S.args.phaseTimeoutS * 1000);
    const ready = (await events(page)).find((e) => e.type === 'ready');
    const backend = await backendShown(page);
    if (backend !== 'webgpu') throw new Error(`loaded onto ${JSON.stringify(backend)}, not webgpu (no WebGPU adapter? Chromium needs --enable-unsafe-webgpu)`);
    await sleep(3000);
    notes.push(`download + load ${loadS.toFixed(0)} s onto ${ready?.adapter || 'webgpu'}`);
    return { notes, peak: await smp.stop() };
  } finally {
    await smp.stop();
    await page.close().catch(() => {});
  }
}

/** Phase 2: GPU loss (twice with ?lose-gpu-at-load=2, else test-lose-device), CPU, N captions. */
async function phaseGpuLossCpu(S) {
  const page = await openApp(S.context, S.server.url, `model=${encodeURIComponent(S.modelUrl)}&backend=${S.args.backend}&count-gpu-buffers=1&lose-gpu-at-load=2`);
  const smp = sampler(page, S.cdp, S.server.url, S.args.sampleMs);
  const notes = [];
  try {
    const loadS = await waitReady(page, S.args.phaseTimeoutS * 1000);
    await sleep(3000);  // a loss reported just after "ready" (device.lost) reaches #backend
    let path;
    if ((await backendShown(page)) === 'cpu') {
      path = 'lose-gpu-at-load=2: GPU load, lost, fresh GPU load, lost, CPU load';
    } else {
      // This worker ignores lose-gpu-at-load (or notices the loss only when it captions): lose the
      // device now; the next caption falls back to the CPU either way.
      await page.evaluate(() => window.edgecap.worker.postMessage({ type: 'test-lose-device' }));
      path = 'loaded on webgpu, then {type:"test-lose-device"}; the first caption fell back to the CPU';
    }
    const seen = (await events(page)).filter((e) => e.type === 'ready' || e.type === 'backend').map((e) => `${e.type} ${e.backend}`);
    notes.push(`load ${loadS.toFixed(0)} s; worker said: ${seen.join(', ')}`);
    console.log(`  ready after ${loadS.toFixed(0)} s (${seen.join(', ')}); ${path}`);

    // The camera: on in the ready handler, or (newer app) started by the first Describe.
    const t0 = Date.now();
    while (!(await cameraLive(page)) && Date.now() - t0 < 10000) await sleep(200);
    if (!(await cameraLive(page))) {
      await page.locator('#capture').click();
      await waitFor(page, () => {
        const v = document.querySelector('#preview');
        return (!!v && v.videoWidth > 0 && !v.hidden) || window.__mem.events.some((e) => e.type === 'caption');
      }, { timeoutMs: 30000, what: 'the camera (Chromium fake camera) after a Describe tap' });
    }

    const captionMs = [];
    let cpuCaptions = 0;
    const started = Date.now();
    while (cpuCaptions < S.args.captions) {
      await waitFor(page, () => document.body.dataset.state === 'ready', { timeoutMs: S.args.captionTimeoutS * 1000, what: 'state ready before a Describe tap' });
      const n0 = (await events(page)).length;
      await page.locator('#capture').click();
      let got;
      const tTap = Date.now();
      for (;;) {
        got = (await events(page)).slice(n0).find((e) => e.type === 'caption' || e.type === 'error');
        if (got) break;
        if (Date.now() - tTap > S.args.captionTimeoutS * 1000) {
          throw new Error(`no caption ${S.args.captionTimeoutS} s after a Describe tap (#backend ${await backendShown(page)}): ` +
            'a caption on WebGPU here (SwiftShader) takes many minutes, so the device loss did not reach the CPU');
        }
        await sleep(100);
      }
      if (got.type === 'error') throw new Error(`the worker answered a caption with an error: ${got.code}: ${got.message}`);
      if (got.backend === 'cpu') {
        cpuCaptions++;
        captionMs.push(got.ms);
        if (cpuCaptions === 1 || cpuCaptions % 5 === 0) console.log(`  ${cpuCaptions}/${S.args.captions} CPU captions (${((Date.now() - started) / 1000).toFixed(0)} s)`);
      } else if (Date.now() - started > S.args.captionTimeoutS * 1000) {
        throw new Error(`still captioning on ${got.backend} after the GPU was lost`);
      }
    }
    await waitFor(page, () => document.body.dataset.state === 'ready', { timeoutMs: S.args.captionTimeoutS * 1000, what: 'state ready after the last caption' });
    await sleep(1000);
    captionMs.sort((a, b) => a - b);
    notes.push(path);
    notes.push(`${cpuCaptions} CPU captions (Describe taps, fake camera) in ${((Date.now() - started) / 1000).toFixed(0)} s, engine median ${captionMs[captionMs.length >> 1]?.toFixed(0)} ms`);
    return { notes, peak: await smp.stop() };
  } finally {
    await smp.stop();
    await page.close().catch(() => {});
  }
}

async function main() {
  let args;
  try {
    args = options(process.argv.slice(2));
  } catch (e) {
    console.error(e.message);
    return 2;
  }
  if (args.help) {
    console.log(fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(1, 30).join('\n'));
    return 0;
  }
  const model = args.model || benchModel();
  if (!fs.existsSync(model)) {
    console.error(`${model} is missing`);
    return 2;
  }
  const dist = args.dist || buildDist();
  const builtHere = !args.dist;
  const cpu = os.cpus()[0]?.model.trim();
  console.log(`memory budget: ${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}; ${os.cpus().length} × ${cpu}; ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM; load ${os.loadavg()[0].toFixed(1)}`);
  console.log(`model: ${path.relative(REPO, model) || model} (${(fs.statSync(model).size / 1e6).toFixed(1)} MB, random weights: its words are noise); app: ${dist}; ?backend=${args.backend}`);

  const server = await start({ dist, models: path.dirname(model) });
  const flags = [...CHROMIUM_FLAGS, '--enable-unsafe-webgpu', '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream'];
  // A plain launch (not a persistent profile): the browser's DevTools session reaches the worker.
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: flags, timeout: 60000 });
  const cleanup = async () => {
    await browser.close().catch(() => {});
    await server.close().catch(() => {});
    if (builtHere) fs.rmSync(dist, { recursive: true, force: true });
  };
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => cleanup().then(() => process.exit(130)));
  const rows = [];
  try {
    console.log(`browser: Chromium ${browser.version()} headless`);
    const context = await browser.newContext({ viewport: { width: 800, height: 900 } });
    await context.addInitScript({ content: PAGE_PROBE(args.sampleMs) });
    const S = { args, server, context, cdp: await browser.newBrowserCDPSession(), modelUrl: `/models/${path.basename(model)}` };
    const phases = [
      { name: 'webgpu-load', budgetMb: args.budgetWebgpuMb, what: 'download and load onto WebGPU (no caption)', run: phaseWebgpuLoad },
      { name: 'gpu-loss-cpu', budgetMb: args.budgetCpuMb, what: `GPU loss, fall-back to the CPU, ${args.captions} CPU captions`, run: phaseGpuLossCpu },
    ];
    for (const ph of phases.filter((p) => args.phases.split(',').includes(p.name))) {
      console.log(`\n== ${ph.name}: ${ph.what}`);
      const t = Date.now();
      try {
        const r = await ph.run(S);
        for (const n of r.notes) console.log(`  ${n}`);
        const p = r.peak;
        console.log(`  ${p.samples} samples in ${((Date.now() - t) / 1000).toFixed(0)} s; at the peak total: wasm ${mib(p.at?.wasm)} MiB, GPU buffers ${mib(p.at?.gpu)} MiB, page heap ${mib(p.at?.pageHeap)} MiB, worker heap ${mib(p.at?.workerHeap)} MiB`);
        rows.push({ ...ph, peak: p, ok: p.total <= ph.budgetMb * 1e6 });
      } catch (e) {
        console.log(`  FAILED: ${e.message}`);
        rows.push({ ...ph, peak: null, ok: false, error: e.message });
      }
    }
  } finally {
    await cleanup();
  }

  const head = ['phase', 'peak wasm MiB', 'peak GPU live MiB', 'peak JS heap MiB', 'peak total MiB', 'budget', 'verdict'];
  const table = rows.map((r) => [r.name, mib(r.peak?.wasm), mib(r.peak?.gpu), mib(r.peak?.heap), mib(r.peak?.total),
    `${r.budgetMb} MB (${mib(r.budgetMb * 1e6)} MiB)`, r.error ? 'FAILED' : r.ok ? 'ok' : 'OVER']);
  const w = head.map((h, i) => Math.max(h.length, ...table.map((row) => String(row[i]).length)));
  const line = (cells) => `| ${cells.map((c, i) => (i === 0 || i >= 5 ? String(c).padEnd(w[i]) : String(c).padStart(w[i]))).join(' | ')} |`;
  console.log(`\n${line(head)}\n|${w.map((n) => '-'.repeat(n + 2)).join('|')}|`);
  for (const row of table) console.log(line(row));
  console.log('(JS heap: page + worker, used, no forced garbage collection; GPU live: createBuffer minus destroy; MB = 10^6 bytes)');

  let bad = 0;
  for (const r of rows) {
    if (r.error) {
      console.log(`FAILED: ${r.name}: ${r.error}`);
      bad++;
    } else if (!r.ok) {
      console.log(`OVER BUDGET: ${r.name} peaked at ${(r.peak.total / 1e6).toFixed(0)} MB (wasm ${mib(r.peak.at.wasm)} MiB + GPU buffers ${mib(r.peak.at.gpu)} MiB + JS heaps ${mib(r.peak.at.pageHeap + r.peak.at.workerHeap)} MiB), above its budget of ${r.budgetMb} MB: an iPhone may kill the tab (WebKit counts GPU allocations against the web process).`);
      bad++;
    }
  }
  console.log(bad ? 'FAILED' : 'ok: every phase within its budget');
  return bad ? 1 : 0;
}

main().then((code) => {
  process.exitCode = code;
  setTimeout(() => process.exit(code), 2000).unref();
}, (e) => {
  console.error(e);
  process.exit(1);
});
