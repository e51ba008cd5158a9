// "About this device" text (www/js/diagnostics.js) from a worker reply and the page's own facts.
import test from 'node:test';
import assert from 'node:assert/strict';
import { diagnosticLines, diagnosticText } from '../../www/js/diagnostics.js';

globalThis.location = { href: 'http://localhost/' };  // modelName() resolves model URLs against it

const page = { build: 'abc123', userAgent: 'UA', standalone: true, backend: 'webgpu', backendPref: 'auto', forcedBackend: null, camera: 'on, 640×480', speech: '3 voices' };

test('an Apple GPU with a small submit size, the model and the last caption are all listed', () => {
  const worker = {
    webgpu: { available: true, vendor: 'apple', architecture: 'common-3', features: ['shader-f16'], limits: { maxBufferSize: 268435456, maxStorageBufferBindingSize: 134217728 } },
    engine: { backend: 'webgpu', adapter: 'apple common-3', submitEvery: 256, gpuLimits: 'adapter', gpuRetries: 1, testModel: false },
    model: { url: 'http://localhost/models/blip-q8_0.gguf', size: 243000000, sha256: 'ff00' },
    storage: { usage: 250e6, quota: 2e9, persisted: true, opfs: true },
    wasmMemoryBytes: 65 * 1048576,
    lastCaption: { ms: 140.4, timingsMs: { preprocess: 3, vision: 60, decode: 77, total: 140.4 }, backend: 'webgpu' },
    crossOriginIsolated: false,
  };
  const text = diagnosticText(diagnosticLines(worker, page), new Date(0));
  for (const want of [
    'App build: abc123', 'Opened from: the Home Screen', 'WebGPU adapter: apple, common-3', 'WebGPU features: shader-f16',
    'maxBufferSize 268435456', 'Command buffer size: at most 256 dispatches per submit', 'GPU devices lost and replaced: 1',
    'Model: blip-q8_0.gguf, 243 MB, SHA-256 ff00', 'Storage: 250 MB used of 2.00 GB allowed', 'Storage kept: yes',
    'Wasm memory: 65 MiB', 'Last caption: 140 ms on webgpu (preprocess 3 ms, vision 60 ms, decode 77 ms)', 'Camera: on, 640×480',
  ]) assert.ok(text.includes(want), `missing ${JSON.stringify(want)} in:\n${text}`);
});

test('no WebGPU, a silent worker and no caption yet are said, not left out', () => {
  const cpu = diagnosticText(diagnosticLines({ webgpu: null, engine: { backend: 'cpu', adapter: 'cpu (wasm simd128)' }, wasmMemoryBytes: 1 }, { ...page, backend: 'cpu' }));
  assert.match(cpu, /WebGPU: not available/);
  assert.match(cpu, /Last caption: none yet/);
  assert.doesNotMatch(cpu, /Command buffer size/);
  const silent = diagnosticText(diagnosticLines(null, page));
  assert.match(silent, /Engine: the model worker did not answer/);
});

test('the CPU thread pool: its size, or one thread and why', () => {
  const base = { webgpu: null, engine: { backend: 'cpu', adapter: 'cpu (wasm simd128, 4 threads)' }, wasmMemoryBytes: 1, crossOriginIsolated: true };
  const pool = diagnosticText(diagnosticLines({ ...base, threads: { threads: 4, reason: null } }, { ...page, backend: 'cpu' }));
  assert.match(pool, /^Cross-origin isolated: yes$/m);
  assert.match(pool, /^CPU threads: 4$/m);
  const none = diagnosticText(diagnosticLines({ ...base, crossOriginIsolated: false, threads: { threads: 0, reason: 'the page is not cross-origin isolated' } }, { ...page, backend: 'cpu' }));
  assert.match(none, /^CPU threads: 1 \(the page is not cross-origin isolated\)$/m);
  // An older worker without the field: no line rather than a wrong one.
  assert.doesNotMatch(diagnosticText(diagnosticLines(base, page)), /CPU threads/);
});

test('the relaxed-SIMD build: used, or why not', () => {
  const base = { webgpu: null, engine: { backend: 'cpu', adapter: 'cpu (wasm relaxed simd)' }, wasmMemoryBytes: 1 };
  assert.match(diagnosticText(diagnosticLines({ ...base, relaxed: { active: true, reason: null } }, page)), /^CPU relaxed SIMD: yes$/m);
  const without = diagnosticText(diagnosticLines({ ...base, relaxed: { active: false, reason: 'this browser has no relaxed SIMD' } }, page));
  assert.match(without, /^CPU relaxed SIMD: no \(this browser has no relaxed SIMD\)$/m);
  assert.doesNotMatch(diagnosticText(diagnosticLines(base, page)), /CPU relaxed SIMD/);
});
