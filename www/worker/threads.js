// The threaded CPU build (threads/, from scripts/build-pkg-threads.sh): the same engine with its
// CPU work on a pool of Web Workers sharing one wasm memory. It needs a cross-origin isolated page
// (shared memory), nested workers and a shared memory reservation (1 GiB maximum), any of
// which a browser may refuse; then CPU captions stay on the single-threaded build, which is always
// there. WebGPU captions always use the single-threaded build (the threaded one has no WebGPU).
//
// Setting (the page's ?threads=0, passed to the worker's URL by js/protocol.js workerUrl): CPU
// captions stay on one thread, to compare or as a way out on a device where the pool misbehaves.

const SETTINGS = new URL(self.location.href).searchParams;
// initThreadPool waits for every pool worker to say it is ready; a browser that starts workers but
// never runs them must not leave the model load waiting for ever.
const START_TIMEOUT_MS = 10000;
// WebKit reports at most 4 (iOS) or 8 cores, whatever the device has; more workers than cores
// only share them.
const MAX_THREADS = 8;

let started = null;  // Promise<{module, threads} | null>, once per worker life
let running = null;  // its value once started
let instantiated = null;  // the threaded module once instantiated, pool or not (its memory is held)
let failed = false;  // a start was tried and did not work: not tried again in this worker
let state = { threads: 0, reason: 'not tried yet (no CPU model loaded)' };

/** How many pool workers to start here, and why none when none. */
function plan() {
  if (SETTINGS.get('threads') === '0') return { threads: 0, reason: 'turned off (threads=0)' };
  if (self.crossOriginIsolated !== true) return { threads: 0, reason: 'the page is not cross-origin isolated' };
  if (!sharedMemory()) return { threads: 0, reason: 'this browser has no shared wasm memory' };
  if (typeof Worker === 'undefined') return { threads: 0, reason: 'this browser has no workers inside workers' };
  const cores = Number(navigator.hardwareConcurrency) || 1;
  if (cores < 2) return { threads: 0, reason: 'one core' };
  return { threads: Math.min(cores, MAX_THREADS), reason: null };
}

// What the threaded build needs, asked directly: WebKitGTK gives isolated pages shared wasm
// memories without a global `SharedArrayBuffer`, so that global is no test.
function sharedMemory() {
  try {
    return new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true }).buffer !== undefined;
  } catch {
    return false;
  }
}

function withTimeout(promise, ms, what) {
  let timer;
  const late = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms / 1000} s`)), ms); });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

async function start() {
  const p = plan();
  if (!p.threads) {
    state = p;
    return null;
  }
  try {
    const module = await import('../threads/edgecap.js');
    await module.default();
    instantiated = module;
    await withTimeout(module.initThreadPool(p.threads), START_TIMEOUT_MS, 'starting the thread pool');
    state = { threads: p.threads, reason: null };
    running = { module, threads: p.threads };
    return running;
  } catch (err) {
    // A build without threads/ (the nightly could not be had), a refused shared memory, workers
    // that never start: one thread, and the diagnostics say why.
    state = { threads: 0, reason: `the threaded build did not start: ${(err && err.message) || err}` };
    failed = true;
    return null;
  }
}

/** Whether this worker may run the threaded build at all (no start is tried where it may not). */
export function threadsPlanned() {
  return plan().threads > 0 && !failed;
}

/** The threaded build, started on first use; null where it cannot run (see `threadState`). */
export function threadedBuild() {
  if (!started) started = start();
  return started;
}

/** {threads, reason}: the pool's size, or 0 and why not. */
export function threadState() {
  if (!started) {
    const p = plan();
    if (!p.threads) return p;
  }
  return { ...state };
}

/** The threaded build's wasm memory in bytes (0 when it was never instantiated). */
export function threadedMemoryBytes() {
  return instantiated ? instantiated.wasmMemoryBytes() : 0;
}
