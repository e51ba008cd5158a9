// What the browser's WebGPU offers, asked with a time limit: a wedged GPU process can leave
// requestAdapter() pending for ever, and the answers that need it (status, diagnostics) must come.
import { webgpuAdapterName } from '../edgecap.js';
import { DIAGNOSTIC_LIMITS } from '../js/protocol.js';

const ADAPTER_TIMEOUT_MS = 3000;
const TIMED_OUT = Symbol('timed out');

function withTimeout(promise, ms) {
  let timer;
  const late = new Promise((resolve) => { timer = setTimeout(() => resolve(TIMED_OUT), ms); });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** The adapter's name as the engine reports it, or null (no WebGPU, no adapter, no answer). */
export async function adapterName() {
  try {
    const name = await withTimeout(webgpuAdapterName(), ADAPTER_TIMEOUT_MS);
    return name === TIMED_OUT || name === undefined ? null : name;
  } catch {
    return null;
  }
}

/** The diagnostics reply's `webgpu`: null without navigator.gpu, else the adapter's information
 *  and limits, or {available: false, reason}. */
export async function adapterDiagnostics() {
  const gpu = typeof navigator !== 'undefined' ? navigator.gpu : undefined;
  if (!gpu || typeof gpu.requestAdapter !== 'function') return null;
  const none = (reason) => ({ available: false, vendor: '', architecture: '', device: '', description: '', features: [], limits: null, reason });
  let adapter;
  try {
    adapter = await withTimeout(gpu.requestAdapter(), ADAPTER_TIMEOUT_MS);
  } catch (err) {
    return none(`requestAdapter() failed: ${(err && err.message) || err}`);
  }
  if (adapter === TIMED_OUT) return none(`requestAdapter() did not answer within ${ADAPTER_TIMEOUT_MS / 1000} s`);
  if (!adapter) return none('the browser gave no adapter');
  const info = adapter.info || {};
  const limits = {};
  for (const name of DIAGNOSTIC_LIMITS) {
    const value = adapter.limits ? adapter.limits[name] : undefined;
    if (value !== undefined) limits[name] = Number(value);
  }
  return {
    available: true,
    vendor: info.vendor || '',
    architecture: info.architecture || '',
    device: info.device || '',
    description: info.description || '',
    features: adapter.features ? [...adapter.features].sort() : [],
    limits,
  };
}
