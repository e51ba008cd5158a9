// The model worker: model store (OPFS), download, SHA-256 check and every Engine call, so the
// page's camera preview and speech never wait on them. This file takes the page's messages and
// runs them one at a time; worker/*.js do the work. The protocol is in js/protocol.js.
//   worker/test-hooks.js   test settings from this script's URL (first: counts GPU buffers from
//                          before the engine starts)
//   worker/store.js        the model store (OPFS, or memory) and the status reply
//   worker/download.js     download with resume, SHA-256 check, a picked file copied in
//   worker/engine.js       load, caption, delete; what a lost GPU device leads to
//   worker/diagnostics.js  the diagnostics reply; worker/webgpu.js  the adapter, with a time limit
//   worker/threads.js      the threaded CPU build, where the page is cross-origin isolated
//   worker/relaxed.js      the relaxed-SIMD CPU build, where the browser has relaxed SIMD
//   worker/errors.js, worker/progress.js   the error and progress messages
import { gpuBufferStats } from './worker/test-hooks.js';
import init, { wasmMemoryBytes } from './edgecap.js';
import { FromWorker, ToWorker, UNQUEUED, invalidMessage } from './js/protocol.js';
import { codedError, postError } from './worker/errors.js';
import { status } from './worker/store.js';
import { abortDownload } from './worker/download.js';
import { load, caption, deleteModel, loseDevice } from './worker/engine.js';
import { diagnostics } from './worker/diagnostics.js';
import { relaxedMemoryBytes } from './worker/relaxed.js';
import { threadedMemoryBytes } from './worker/threads.js';

const wasmReady = init();
wasmReady.catch(() => {});  // reported by each message that needs the engine, not as unhandled

// One message at a time, in order: a caption sent while the model loads waits for it.
let queue = Promise.resolve();
self.onmessage = (event) => {
  const msg = event.data;
  const invalid = invalidMessage(msg);
  if (invalid) {
    postError(codedError('internal', invalid), msg && msg.id);
    return;
  }
  if (UNQUEUED.has(msg.type)) {
    unqueued(msg);
    return;
  }
  queue = queue.then(() => handle(msg)).catch((err) => postError(err, msg.id));
};

// What must not wait for a load or a caption to finish.
function unqueued(msg) {
  switch (msg.type) {
    case ToWorker.ABORT: return abortDownload();
    case ToWorker.STATS:
      return wasmReady.then(() => self.postMessage(stats()), (err) => postError(err));
    case ToWorker.DIAGNOSTICS:
      return diagnostics(wasmReady).then((reply) => self.postMessage(reply), (err) => postError(err));
    // Test hook: the GPU device dies as on a driver reset, under a running caption or before the next.
    case ToWorker.TEST_LOSE_DEVICE: return loseDevice();
    default: return undefined;
  }
}

async function handle(msg) {
  await wasmReady;
  switch (msg.type) {
    case ToWorker.STATUS: return status();
    case ToWorker.LOAD: return load(msg);
    case ToWorker.CAPTION: return caption(msg);
    case ToWorker.DELETE: return deleteModel();
    default: throw codedError('internal', `Unexpected message type: ${msg.type}`);
  }
}

function stats() {
  return { type: FromWorker.STATS, wasmMemoryBytes: wasmMemoryBytes() + threadedMemoryBytes() + relaxedMemoryBytes(), gpuBuffers: gpuBufferStats() };
}
