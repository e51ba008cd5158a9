// The loaded model and what happens when its GPU goes away. WebKit loses every device under
// memory pressure and iOS refuses GPU work from the background, so a lost device is expected,
// not fatal: the first loss in this worker's life is met with a fresh adapter and device (the
// usual cause has passed by then), a later one with the CPU for the rest of the visit.
import { Engine } from '../edgecap.js';
import { FromWorker, GPU_FAILURES } from '../js/protocol.js';
import { codedError, errorCode, errorMessage } from './errors.js';
import { throttled } from './progress.js';
import { getStore, publicModel } from './store.js';
import { modelSource } from './download.js';
import { afterGpuLoad } from './test-hooks.js';
import { relaxedBuild, relaxedPlanned } from './relaxed.js';
import { threadedBuild, threadsPlanned } from './threads.js';
import { adapterName } from './webgpu.js';

let engine = null;
let reader = null;       // the ModelReader the engine was loaded from (kept for reloads after a loss)
let model = null;        // {url, size, sha256} of the loaded model
let gpuOptions = {};     // the last load's Engine.load options, kept for a fresh GPU device
let gpuLosses = 0;       // devices lost in this worker's life
let gpuRetries = 0;      // lost devices replaced by a fresh one
let lastCaption = null;  // {ms, timingsMs, backend} of the last caption made

/** Frees the engine now: its GPU buffers and device are destroyed rather than left to the GC. */
function freeEngine() {
  free(engine);
  engine = null;
  model = null;
}

function free(e) {
  if (!e) return;
  try { e.free(); } catch { /* already freed by a failed call */ }
}

/** Answers {type:"load"}: the model from its source into the store, then onto a backend. */
export async function load(msg) {
  const s = await getStore();
  freeEngine();
  reader = null;
  const meta = await modelSource(s, msg.source);
  if (!meta) return;  // aborted: "aborted" was posted
  reader = { size: meta.size, read: (offset, length) => s.read(offset, length) };
  gpuOptions = loadOptions(msg.gpu);
  const progress = throttled('load');
  const loaded = await loadByRule(msg.backend || 'auto', {
    onAttempt: () => progress(0, meta.size, true),
    onProgress: (done, total) => progress(done, total),
  });
  // The last report always goes out, as the download's does: a load shorter than the throttle's
  // interval (the tiny test model on a warm GPU) would otherwise show 0 % until "ready".
  progress(meta.size, meta.size, true);
  engine = loaded.engine;
  model = publicModel(meta);
  self.postMessage({ type: FromWorker.READY, ...engineSummary(), model, fallback: loaded.fallback });
}

// The page's GPU test settings as Engine.load's options (absent fields keep the engine's defaults).
function loadOptions(gpu) {
  const out = {};
  if (gpu && Number.isInteger(gpu.submitEvery) && gpu.submitEvery > 0) out.submitEvery = gpu.submitEvery;
  if (gpu && (gpu.gpuLimits === 'default' || gpu.gpuLimits === 'adapter')) out.gpuLimits = gpu.gpuLimits;
  return out;
}

/**
 * Loads `reader` on `backend` by the GPU-loss rule: a device lost while loading or right after
 * gets one fresh device in the worker's life, then the CPU; any other GPU failure goes to the CPU
 * at once where the CPU is acceptable (backend "auto", or once a device was lost). Failures of the
 * model or its storage are thrown: the CPU would meet them too. Returns {engine, fallback, retried}.
 */
async function loadByRule(backend, { onAttempt = () => {}, onProgress = () => {}, afterLoss = false } = {}) {
  let want = backend;
  let fallback = null;
  let retried = false;
  for (;;) {
    onAttempt();
    try {
      return { engine: await loadChecked(want, onProgress), fallback, retried };
    } catch (err) {
      const code = errorCode(err);
      if (want === 'cpu' || !GPU_FAILURES.has(code)) throw err;
      if (code === 'device-lost' && gpuLosses++ === 0) {
        gpuRetries++;
        retried = true;
        want = 'webgpu';
        continue;
      }
      if (code !== 'device-lost' && backend === 'webgpu' && !afterLoss && !retried) throw err;
      fallback = { from: 'webgpu', reason: errorMessage(err, code) };
      want = 'cpu';
    }
  }
}

/** Engine.load, and on WebGPU a round trip to find a device lost while loading. */
async function loadChecked(backend, onProgress) {
  const build = await buildFor(backend);
  const e = await build.Engine.load(reader, build.backend, onProgress, gpuOptions);
  if (e.backend !== 'webgpu') return e;
  afterGpuLoad(e);
  try {
    await e.checkDevice();
  } catch (err) {
    free(e);
    throw err;
  }
  return e;
}

/**
 * Which build loads `backend`: CPU loads go to the threaded build where it runs (threads.js), else
 * to the relaxed-SIMD one where the browser has it (relaxed.js); the rest to the default build,
 * the only one with WebGPU. "auto" is decided here, as the engine would decide it (WebGPU when the
 * browser gives an adapter), but only where the choice matters.
 */
async function buildFor(backend) {
  if (backend === 'webgpu' || !(threadsPlanned() || relaxedPlanned())) return { Engine, backend };
  if (backend === 'auto' && (await adapterName()) !== null) return { Engine, backend: 'webgpu' };
  const threaded = threadsPlanned() ? await threadedBuild() : null;
  if (threaded) return { Engine: threaded.module.Engine, backend: 'cpu' };
  const relaxed = relaxedPlanned() ? await relaxedBuild() : null;
  return relaxed ? { Engine: relaxed.Engine, backend: 'cpu' } : { Engine, backend };
}

/** What the page shows of the running engine ("ready" and "backend" carry it). */
function engineSummary() {
  return {
    backend: engine.backend,
    adapter: engine.adapter,
    testModel: engine.isTestModel,
    submitEvery: engine.submitEvery ?? null,
    gpuLimits: engine.gpuLimits ?? null,
  };
}

/** Answers {type:"caption"}; a lost device is replaced (see loadByRule) and the pixels captioned again. */
export async function caption(msg) {
  const { id, width, height } = msg;
  const pixels = new Uint8Array(msg.pixels);
  for (;;) {
    if (!engine) throw codedError('internal', 'No model is loaded.');
    let result;
    try {
      result = await engine.caption(pixels, width, height);
    } catch (err) {
      if (errorCode(err) !== 'device-lost' || !reader) throw err;
      await replaceLostEngine(err);
      continue;
    }
    const t = result.timingsMs || {};
    const timingsMs = { preprocess: t.preprocess, vision: t.vision, decode: t.decode, total: t.total };
    lastCaption = { ms: result.ms, timingsMs, backend: result.backend };
    self.postMessage({
      type: FromWorker.CAPTION,
      id,
      caption: result.caption,
      tokenIds: Array.from(result.tokenIds || []),
      ms: result.ms,
      backend: result.backend,
      timingsMs,
    });
    return;
  }
}

// The GPU went away during a caption (driver reset, memory pressure, the app in the background
// on iOS): the first time, a fresh device; later, the CPU, slower but sure.
async function replaceLostEngine(lost) {
  const keep = model;
  freeEngine();
  const first = gpuLosses++ === 0;
  if (first) gpuRetries++;
  const loaded = await loadByRule(first ? 'webgpu' : 'cpu', { afterLoss: true });
  engine = loaded.engine;
  model = keep;
  const s = engineSummary();
  self.postMessage({
    type: FromWorker.BACKEND,
    backend: s.backend,
    adapter: s.adapter,
    reason: loaded.fallback ? loaded.fallback.reason : errorMessage(lost),
    retried: first,
    submitEvery: s.submitEvery,
    gpuLimits: s.gpuLimits,
  });
}

/** Answers {type:"delete"}: the engine freed, the stored model removed. */
export async function deleteModel() {
  freeEngine();
  reader = null;
  const s = await getStore();
  await s.remove();
  self.postMessage({ type: FromWorker.DELETED });
}

/** Test hook ({type:"test-lose-device"}): the device dies as on a driver reset. */
export function loseDevice() {
  if (engine) engine.loseDevice();
}

/** The diagnostics reply's engine, model and lastCaption. */
export function engineDiagnostics() {
  return {
    engine: engine ? { ...engineSummary(), gpuRetries } : null,
    model,
    lastCaption,
  };
}
