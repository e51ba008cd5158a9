// The page ↔ model-worker protocol: plain objects through postMessage. The page (js/app.js) and
// the worker (worker.js, worker/*.js) both import this module, so a message type is spelled once.
// docs/web-app.md ("Page ↔ worker messages") summarises it; this comment is the reference.
//
// page → worker (one at a time, in order: a caption sent while the model loads waits for it;
// the UNQUEUED ones below are handled at once)
//   {type:"status"}
//       → {type:"status", stored: {url, size, sha256|null}|null, partial: {url, loaded, size|null}|null,
//          webgpu: string|null, persistent}
//         stored: a complete model in the store; partial: a resumable download; webgpu: the adapter's
//         name (null: none, or requestAdapter() did not answer within 3 s); persistent: false when
//         there is no OPFS (the model then lives in memory for this visit only).
//   {type:"load", source, backend?, gpu?}
//         source: {kind:"stored"} | {kind:"url", url, sha256?} | {kind:"file", file: File};
//         backend: "auto" (default) | "webgpu" | "cpu"; gpu: {submitEvery?, gpuLimits?} (test
//         settings ?submit-every=N, ?gpu-limits=default|adapter: Engine.load's LoadOptions).
//       → any number of {type:"progress", phase, loaded, total}, phase "download" | "verify" |
//         "copy" (a picked file copied into storage) | "load" (tensors; starts again at 0 when a
//         lost GPU is tried again or the load falls back to the CPU),
//         then {type:"ready", backend, adapter, model: {url, size, sha256|null}, testModel,
//               submitEvery, gpuLimits, fallback}
//         or {type:"error", code, message, retryable?}, or {type:"aborted", …} (see abort).
//         submitEvery: dispatches per command buffer at most (a number, or null: no bound);
//         gpuLimits: "adapter" | "default"; both null on the CPU.
//         fallback: null, or {from:"webgpu", reason} when the load ended on the CPU because the GPU
//         failed (say so: descriptions will be slower). GPU-loss rule: a device lost while loading,
//         or found lost right after, is tried once more on a fresh adapter and device (once in the
//         worker's life), then the CPU; any other GPU failure (no adapter, validation, out of memory)
//         goes to the CPU at once with backend "auto" (with "webgpu", only after a loss). Errors of
//         the model or storage (GPU_FAILURES excludes them) are reported, never fallen back from.
//   {type:"caption", id, width, height, pixels}   pixels: an ArrayBuffer of width*height*4 RGBA
//         bytes, transferred.
//       → {type:"caption", id, caption, tokenIds, ms, backend, timingsMs: {preprocess, vision, decode, total}}
//         or {type:"error", id, code, message}.
//         When the GPU device is lost during a caption, the worker reloads the model (the first
//         loss in its life on a fresh WebGPU adapter and device, later ones on the CPU), posts
//         {type:"backend", backend, adapter, reason, retried, submitEvery, gpuLimits}
//         (retried: true when a fresh GPU device was tried, even if that failed too and backend
//         is "cpu"), and captions the same pixels again.
//   {type:"delete"}  → {type:"deleted"} (the engine freed, the stored model and download removed).
//   {type:"abort"}   stops a running download, which stays resumable; the load that started it
//         answers {type:"aborted", loaded, total} instead of "ready". Unqueued.
//   {type:"stats"}   → {type:"stats", wasmMemoryBytes, gpuBuffers}. Unqueued. gpuBuffers:
//         {created, destroyed, live, liveBytes, collectedUndestroyed} with the worker setting
//         count-gpu-buffers=1 (a test setting: GPUDevice.createBuffer and GPUBuffer.destroy are
//         counted from before the engine starts; collectedUndestroyed: buffers the garbage collector
//         took without a destroy(), whose GPU memory was held until then), else null.
//   {type:"diagnostics"}  → (unqueued) {type:"diagnostics",
//         webgpu: null (no navigator.gpu) | {available, vendor, architecture, device, description,
//                 features: [...], limits: {maxBufferSize, maxStorageBufferBindingSize,
//                 maxComputeWorkgroupStorageSize, maxComputeInvocationsPerWorkgroup,
//                 maxStorageBuffersPerShaderStage} | null, reason?}
//                 (available false: no adapter, or requestAdapter() failed or did not answer
//                 within 3 s: reason says which; strings are "" where the browser hides them),
//         engine: {backend, adapter, submitEvery, gpuLimits, gpuRetries, testModel} | null
//                 (gpuRetries: lost GPU devices replaced by a fresh one in this worker's life),
//         model: {url, size, sha256|null} | null   (the loaded model),
//         storage: {usage, quota, persisted, opfs}  (null fields where the browser does not say;
//                 opfs: whether the model store is the origin-private file system, null before
//                 the first status),
//         wasmMemoryBytes (null when the engine failed to start; every started build's together),
//         lastCaption: {ms, timingsMs: {preprocess, vision, decode, total}, backend} | null,
//         crossOriginIsolated, userAgent,
//         threads: {threads, reason}   (the CPU pool's size, or 0 and why not: worker/threads.js),
//         relaxed: {active, reason}   (whether CPU captions use the relaxed-SIMD build: worker/relaxed.js)}
//   {type:"test-lose-device"}  (test hook, unqueued) destroys the engine's GPU device as a driver
//         reset would: a caption running then, or the next one, meets the loss. No answer.
//
// worker → page, unasked
//   {type:"notice", message}   worth saying, not an error (no persistent storage; a retry).
//
// error codes (`code` of "error"): model, image, device-lost, gpu, unsupported, storage,
//   storage-full, checksum, network, blocked, busy, internal. `retryable: true` (lost connection,
//   server 5xx): the page resumes by itself when back online. "storage" also covers a model file
//   locked by another tab. "blocked": a model address on another origin, refused by the app's
//   Content-Security-Policy (connect-src 'self'); not retryable. An abort is not an error.
//
// Worker settings (query of the worker's URL; test settings the page passes through from its own
// query, see workerUrl): count-gpu-buffers=1 (above, "stats"); lose-gpu-at-load=N: the first N
// GPU loads of this worker lose their device right after loading (1: ready on WebGPU after one
// fresh device; 2: ready on the CPU with a fallback); threads=0: CPU captions stay on the
// single-threaded build even where the page is cross-origin isolated (worker/threads.js);
// relaxed=0: single-threaded CPU captions stay on the SIMD128 build where the browser has relaxed
// SIMD (worker/relaxed.js).

/** Messages the page sends. */
export const ToWorker = Object.freeze({
  STATUS: 'status',
  LOAD: 'load',
  CAPTION: 'caption',
  DELETE: 'delete',
  ABORT: 'abort',
  STATS: 'stats',
  DIAGNOSTICS: 'diagnostics',
  TEST_LOSE_DEVICE: 'test-lose-device',
});

/** Messages the worker sends. */
export const FromWorker = Object.freeze({
  STATUS: 'status',
  PROGRESS: 'progress',
  READY: 'ready',
  CAPTION: 'caption',
  ERROR: 'error',
  BACKEND: 'backend',
  DELETED: 'deleted',
  ABORTED: 'aborted',
  NOTICE: 'notice',
  STATS: 'stats',
  DIAGNOSTICS: 'diagnostics',
});

/** Handled as they arrive rather than after the load or caption in progress. */
export const UNQUEUED = new Set([ToWorker.ABORT, ToWorker.STATS, ToWorker.DIAGNOSTICS, ToWorker.TEST_LOSE_DEVICE]);

/** Failures of the GPU itself, which the CPU may not have. The model's and storage's errors would
 *  fail on the CPU the same way. */
export const GPU_FAILURES = new Set(['device-lost', 'gpu', 'unsupported']);

/** The adapter limits the diagnostics reply lists: what decides whether BLIP's kernels fit. */
export const DIAGNOSTIC_LIMITS = Object.freeze([
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxStorageBuffersPerShaderStage',
]);

/** The page's test settings that the worker reads from its own URL. */
export const WORKER_SETTINGS = Object.freeze(['count-gpu-buffers', 'lose-gpu-at-load', 'threads', 'relaxed']);

/** The worker's URL for a page whose query is `pageParams` (URLSearchParams): the worker settings
 *  in it are passed on as given. */
export function workerUrl(pageParams, script = 'worker.js') {
  const out = new URLSearchParams();
  for (const name of WORKER_SETTINGS) {
    const value = pageParams.get(name);
    if (value !== null) out.set(name, value);
  }
  const query = out.toString();
  return query ? `${script}?${query}` : script;
}

/** Why a page message cannot be handled (a string), or null when it is well formed. */
export function invalidMessage(msg) {
  if (!msg || typeof msg !== 'object' || typeof msg.type !== 'string') return 'a message must be an object with a type';
  if (!Object.values(ToWorker).includes(msg.type)) return `unknown message type: ${msg.type}`;
  if (msg.type === ToWorker.CAPTION) {
    const { width, height, pixels } = msg;
    if (!Number.isInteger(width) || !Number.isInteger(height) || width < 0 || height < 0) return 'caption: width and height must be whole numbers';
    // Their number is the engine's to check: it answers code "image", which the page shows.
    if (!(pixels instanceof ArrayBuffer)) return 'caption: pixels must be an ArrayBuffer';
  }
  if (msg.type === ToWorker.LOAD && msg.source !== undefined) {
    const kinds = ['stored', 'url', 'file'];
    if (!msg.source || !kinds.includes(msg.source.kind)) return `load: source.kind must be one of ${kinds.join(', ')}`;
    if (msg.source.kind === 'url' && typeof msg.source.url !== 'string') return 'load: source.url must be a string';
  }
  if (msg.type === ToWorker.LOAD && msg.backend !== undefined && !['auto', 'webgpu', 'cpu'].includes(msg.backend)) {
    return `load: backend must be auto, webgpu or cpu, not ${msg.backend}`;
  }
  return null;
}
