// The answer to {type:"diagnostics"}: what an "About this device" panel shows, so that a run on
// a phone we cannot watch still tells us what happened (protocol.js has the shape).
import { wasmMemoryBytes } from '../edgecap.js';
import { FromWorker } from '../js/protocol.js';
import { engineDiagnostics } from './engine.js';
import { openedStore } from './store.js';
import { adapterDiagnostics } from './webgpu.js';
import { relaxedMemoryBytes, relaxedState } from './relaxed.js';
import { threadState, threadedMemoryBytes } from './threads.js';

async function storageDiagnostics() {
  const storage = navigator.storage;
  const out = { usage: null, quota: null, persisted: null, opfs: openedStore() ? openedStore().persistent : null };
  if (!storage) return out;
  try {
    if (storage.estimate) {
      const { usage, quota } = await storage.estimate();
      out.usage = Number.isFinite(usage) ? usage : null;
      out.quota = Number.isFinite(quota) ? quota : null;
    }
  } catch { /* not said */ }
  try {
    if (storage.persisted) out.persisted = await storage.persisted();
  } catch { /* not said */ }
  return out;
}

/** `wasmReady`: the engine's start, which may have failed (then no wasm memory to report). */
export async function diagnostics(wasmReady) {
  const started = await wasmReady.then(() => true, () => false);
  const [webgpu, storage] = await Promise.all([adapterDiagnostics(), storageDiagnostics()]);
  return {
    type: FromWorker.DIAGNOSTICS,
    webgpu,
    ...engineDiagnostics(),
    storage,
    // Both builds' memories where the threaded one runs too: what the tab holds.
    wasmMemoryBytes: started ? wasmMemoryBytes() + threadedMemoryBytes() + relaxedMemoryBytes() : null,
    crossOriginIsolated: self.crossOriginIsolated === true,
    threads: threadState(),
    relaxed: relaxedState(),
    userAgent: navigator.userAgent,
  };
}
