// Test settings, read from the worker's URL (the page passes its own through: protocol.js
// workerUrl). Nothing here changes what the app does unless a setting is given.
//   count-gpu-buffers=1  count WebGPU buffers created and destroyed ({type:"stats"} reports them)
//   lose-gpu-at-load=N   the first N GPU loads of this worker lose their device right after loading
const SETTINGS = new URL(self.location.href).searchParams;

// Installed on import, before the wasm module makes any device.
const gpuBufferCount = SETTINGS.get('count-gpu-buffers') === '1' ? countGpuBuffers() : null;

const loseAtLoad = Math.max(0, Number.parseInt(SETTINGS.get('lose-gpu-at-load') ?? '0', 10) || 0);
let gpuLoads = 0;

// Counts the WebGPU buffers the engine creates and destroys, to find leaks over a long run
// (tests/e2e/long-run.mjs) and to show that freeing an engine frees its GPU memory at once
// (tests/e2e/gpu-loss.mjs). `collectedUndestroyed`: buffers the garbage collector took without a
// destroy() call (their GPU memory was held until then).
function countGpuBuffers() {
  const c = { created: 0, destroyed: 0, liveBytes: 0, collectedUndestroyed: 0 };
  if (typeof GPUDevice === 'undefined' || typeof GPUBuffer === 'undefined') return c;
  const gone = new WeakSet();
  const collected = typeof FinalizationRegistry === 'function'
    ? new FinalizationRegistry((held) => { if (!held.destroyed) c.collectedUndestroyed++; })
    : null;
  const holds = new WeakMap();
  const createBuffer = GPUDevice.prototype.createBuffer;
  GPUDevice.prototype.createBuffer = function (descriptor) {
    const buffer = createBuffer.call(this, descriptor);
    c.created++;
    c.liveBytes += Number(buffer.size) || 0;
    if (collected) {
      const held = { destroyed: false };
      holds.set(buffer, held);
      collected.register(buffer, held);
    }
    return buffer;
  };
  const destroy = GPUBuffer.prototype.destroy;
  GPUBuffer.prototype.destroy = function () {
    if (!gone.has(this)) {
      gone.add(this);
      c.destroyed++;
      c.liveBytes -= Number(this.size) || 0;
      const held = holds.get(this);
      if (held) held.destroyed = true;
    }
    return destroy.call(this);
  };
  return c;
}

/** The stats reply's `gpuBuffers`: null unless counting. */
export function gpuBufferStats() {
  return gpuBufferCount ? { ...gpuBufferCount, live: gpuBufferCount.created - gpuBufferCount.destroyed } : null;
}

/** Called after each load onto WebGPU: with lose-gpu-at-load=N, the first N lose their device. */
export function afterGpuLoad(engine) {
  gpuLoads++;
  if (gpuLoads <= loseAtLoad) engine.loseDevice();
}
