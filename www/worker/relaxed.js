// The relaxed-SIMD CPU build (relaxed/, from scripts/build-pkg-relaxed.sh): the same engine with
// its int8 products on relaxed SIMD's 8-bit dot product, where the browser has it (Chromium since
// version 114; see docs/performance.md for what it gains). A browser
// without relaxed SIMD refuses the whole module, so it is asked first, with a one-function module
// that uses the instruction; single-threaded CPU captions then load this build, and everything
// else keeps the default one (WebGPU, the threaded pool, browsers without relaxed SIMD).
//
// Setting (the page's ?relaxed=0, passed to the worker's URL by js/protocol.js workerUrl): CPU
// captions stay on the SIMD128 build, to compare or as a way out on a browser that misbehaves.

const SETTINGS = new URL(self.location.href).searchParams;

// (module (func (param v128 v128 v128) (result v128)
//   local.get 0 local.get 1 local.get 2 i32x4.relaxed_dot_i8x16_i7x16_add_s))
const PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
  0x01, 0x08, 0x01, 0x60, 0x03, 0x7b, 0x7b, 0x7b, 0x01, 0x7b, // type: (v128 v128 v128) -> v128
  0x03, 0x02, 0x01, 0x00, // function 0 has type 0
  0x0a, 0x0d, 0x01, 0x0b, 0x00, 0x20, 0x00, 0x20, 0x01, 0x20, 0x02, 0xfd, 0x93, 0x02, 0x0b, // its body
]);

let started = null;  // Promise<module | null>, once per worker life
let instantiated = null;  // the module once instantiated (its memory is held)
let failed = false;  // a start was tried and did not work: not tried again in this worker
let state = { active: false, reason: 'not tried yet (no CPU model loaded)' };

/** Whether this browser validates relaxed SIMD's dot product. */
export function hasRelaxedSimd() {
  try {
    return WebAssembly.validate(PROBE);
  } catch {
    return false;
  }
}

function plan() {
  if (SETTINGS.get('relaxed') === '0') return { active: false, reason: 'turned off (relaxed=0)' };
  if (!hasRelaxedSimd()) return { active: false, reason: 'this browser has no relaxed SIMD' };
  return { active: true, reason: null };
}

async function start() {
  const p = plan();
  if (!p.active) {
    state = p;
    return null;
  }
  try {
    const module = await import('../relaxed/edgecap.js');
    await module.default();
    instantiated = module;
    state = { active: true, reason: null };
    return module;
  } catch (err) {
    // A build without relaxed/ (EDGECAP_RELAXED=0), or an engine that validates the probe but
    // not the build: the SIMD128 build, and the diagnostics say why.
    state = { active: false, reason: `the relaxed-SIMD build did not start: ${(err && err.message) || err}` };
    failed = true;
    return null;
  }
}

/** Whether CPU loads may try the relaxed-SIMD build (nothing is fetched where they may not). */
export function relaxedPlanned() {
  return plan().active && !failed;
}

/** The relaxed-SIMD build's module, started on first use; null where it cannot run. */
export function relaxedBuild() {
  if (!started) started = start();
  return started;
}

/** {active, reason}: whether CPU captions use the relaxed-SIMD build, and why not. */
export function relaxedState() {
  if (!started) {
    const p = plan();
    if (!p.active) return p;
  }
  return { ...state };
}

/** The relaxed-SIMD build's wasm memory in bytes (0 when it was never instantiated). */
export function relaxedMemoryBytes() {
  return instantiated ? instantiated.wasmMemoryBytes() : 0;
}
