// The page ↔ worker protocol's helpers (www/js/protocol.js): the worker URL the page builds from
// its test settings, and the check the worker makes of each message before queueing it.
import test from 'node:test';
import assert from 'node:assert/strict';
import { workerUrl, invalidMessage, ToWorker, UNQUEUED, GPU_FAILURES } from '../../www/js/protocol.js';

test('the worker URL carries the worker settings of the page, and nothing else', () => {
  assert.equal(workerUrl(new URLSearchParams('model=/m.gguf&backend=cpu')), 'worker.js');
  assert.equal(workerUrl(new URLSearchParams('count-gpu-buffers=1&model=x')), 'worker.js?count-gpu-buffers=1');
  assert.equal(workerUrl(new URLSearchParams('lose-gpu-at-load=2&count-gpu-buffers=1')), 'worker.js?count-gpu-buffers=1&lose-gpu-at-load=2');
  assert.equal(workerUrl(new URLSearchParams('model=x.gguf&threads=0')), 'worker.js?threads=0');
});

test('well-formed messages pass; malformed ones are refused with a reason', () => {
  const pixels = new ArrayBuffer(2 * 2 * 4);
  assert.equal(invalidMessage({ type: 'status' }), null);
  assert.equal(invalidMessage({ type: 'load', source: { kind: 'url', url: '/m.gguf' }, backend: 'auto' }), null);
  assert.equal(invalidMessage({ type: 'load' }), null);
  assert.equal(invalidMessage({ type: 'caption', id: 1, width: 2, height: 2, pixels }), null);
  // The pixel count is the engine's to check (code "image", shown by the page).
  assert.equal(invalidMessage({ type: 'caption', id: 1, width: 3, height: 2, pixels }), null);
  assert.match(invalidMessage(null), /object with a type/);
  assert.match(invalidMessage({ type: 'reload' }), /unknown message type/);
  assert.match(invalidMessage({ type: 'caption', id: 1, width: 2.5, height: 2, pixels }), /whole numbers/);
  assert.match(invalidMessage({ type: 'caption', id: 1, width: 2, height: 2, pixels: new Uint8Array(16) }), /ArrayBuffer/);
  assert.match(invalidMessage({ type: 'load', source: { kind: 'ftp' } }), /source.kind/);
  assert.match(invalidMessage({ type: 'load', backend: 'gpu' }), /backend/);
});

test('only abort, stats, diagnostics and the loss hook jump the queue; only GPU codes fall back', () => {
  assert.deepEqual([...UNQUEUED].sort(), ['abort', 'diagnostics', 'stats', 'test-lose-device']);
  assert.ok(!UNQUEUED.has(ToWorker.CAPTION) && !UNQUEUED.has(ToWorker.LOAD));
  for (const code of ['model', 'storage', 'checksum', 'storage-full', 'network', 'image', 'internal']) assert.ok(!GPU_FAILURES.has(code), code);
  for (const code of ['device-lost', 'gpu', 'unsupported']) assert.ok(GPU_FAILURES.has(code), code);
});
