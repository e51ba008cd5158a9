// The model worker: model store (OPFS), download, SHA-256 check and every Engine call, so the page's
// camera preview and speech never wait on them. The protocol is in docs/web-app.md; additions:
//   worker → page  {type:"progress", phase:"copy", …}   while a picked file is copied into storage
//                  {type:"aborted", loaded, total}        answer to {type:"abort"} (download resumable)
//                  {type:"notice", message}               something the user should know, not an error
//   status reply   also has partial: {url, loaded, size}|null (a resumable download) and
//                  persistent: false when there is no OPFS (the model then lives in memory only).
//   error          may carry retryable: true (lost connection, server 5xx): the page resumes by itself
//                  when it is back online; "storage" also covers a model file locked by another tab;
//                  an abort is not an error. Code "blocked": a model address on another origin that
//                  the app's Content-Security-Policy (connect-src 'self') refused; not retryable.
//   load           may carry gpu: {submitEvery?, gpuLimits?} (test settings ?submit-every=N and
//                  ?gpu-limits=default|adapter: passed to Engine.load as its LoadOptions); "ready"
//                  then has submitEvery (number|null: dispatches per command buffer at most) and
//                  gpuLimits ("adapter"|"default"|null), both null on the CPU.
//   backend        (the GPU was lost, now on the CPU) also carries adapter.
//   page → worker  {type:"stats"}  answered at once (not queued behind a caption) with
//                  {type:"stats", wasmMemoryBytes, gpuBuffers|null}; gpuBuffers is
//                  {created, destroyed, live, liveBytes, collectedUndestroyed} when started as
//                  worker.js?count-gpu-buffers=1 (a test setting: GPUDevice.createBuffer and
//                  GPUBuffer.destroy are counted from before the engine starts), else null.
import init, { Engine, Sha256, webgpuAdapterName, wasmMemoryBytes } from './edgecap.js';

const TEST_SETTINGS = new URL(self.location.href).searchParams;
const gpuBufferCount = TEST_SETTINGS.get('count-gpu-buffers') === '1' ? countGpuBuffers() : null;

// Test setting: counts the WebGPU buffers the engine creates and destroys, to find leaks over a
// long run (tests/e2e/long-run.mjs). Installed before the wasm module exists.
// `collectedUndestroyed`: buffers the garbage collector took without a destroy() call (their GPU
// memory was held until then).
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

// Content-Security-Policy violations seen in this worker (a blocked fetch of another origin), so a
// refused model address is reported as such instead of as a lost connection.
const violations = [];
self.addEventListener('securitypolicyviolation', (e) => {
  violations.push({ uri: e.blockedURI, directive: e.effectiveDirective || e.violatedDirective });
  if (violations.length > 20) violations.shift();
});

const MODEL_FILE = 'model.gguf';
const META_FILE = 'model.json';
const CHUNK = 4 * 1024 * 1024;           // hashing and file copy read this much at a time
const PROGRESS_EVERY_MS = 100;          // ~10 progress messages a second at most
const RETRIES = 5;                      // network errors during a download
const FLUSH_EVERY = 16 * 1024 * 1024;   // so a killed tab loses at most this much of a download

const wasmReady = init();
wasmReady.catch(() => {});  // reported by each message that needs the engine, not as unhandled

let store = null;          // OpfsStore, or MemoryStore where OPFS is missing
let engine = null;
let reader = null;         // the ModelReader the engine was loaded from (kept for the CPU fallback)
let model = null;          // {url, size, sha256} of the loaded model
let downloadAbort = null;  // AbortController of the running download

// One message at a time, in order: a caption sent while the model loads waits for it.
// "abort" alone jumps the queue, since it must reach a running download.
let queue = Promise.resolve();
self.onmessage = (event) => {
  const msg = event.data;
  if (msg && msg.type === 'abort') {
    if (downloadAbort) downloadAbort.abort();
    return;
  }
  if (msg && msg.type === 'stats') {
    wasmReady.then(() => self.postMessage(stats()), (err) => postError(err));
    return;
  }
  queue = queue.then(() => handle(msg)).catch((err) => postError(err, msg && msg.id));
};

async function handle(msg) {
  await wasmReady;
  switch (msg.type) {
    case 'status': return status();
    case 'load': return load(msg);
    case 'caption': return caption(msg);
    // Test hook: the GPU device dies as on a driver reset; the next caption must fall back to the CPU.
    case 'test-lose-device': if (engine) engine.loseDevice(); return;
    case 'delete': return remove();
    default: throw codedError('internal', `Unknown message type: ${msg.type}`);
  }
}

function stats() {
  return {
    type: 'stats',
    wasmMemoryBytes: wasmMemoryBytes(),
    gpuBuffers: gpuBufferCount
      ? { ...gpuBufferCount, live: gpuBufferCount.created - gpuBufferCount.destroyed }
      : null,
  };
}

// ---------------------------------------------------------------------------------------------
// Errors: wasm errors carry err.code; browser errors are mapped to the codes the page knows.

function codedError(code, message) {
  const err = new Error(message);
  err.code = code;
  return err;
}

function errorCode(err) {
  if (err && typeof err.code === 'string') return err.code;
  const name = err && err.name;
  if (name === 'QuotaExceededError') return 'storage-full';
  if (name === 'NoModificationAllowedError' || name === 'InvalidStateError' ||
      name === 'NotFoundError' || name === 'NotAllowedError' || name === 'SecurityError') return 'storage';
  if (err instanceof TypeError) return 'network';
  return 'internal';
}

function errorMessage(err, code) {
  if (code === 'storage' && err && err.name === 'NoModificationAllowedError') {
    return 'The model file is in use by another edgecap tab or window. Close it and try again.';
  }
  return (err && err.message) || String(err);
}

function postError(err, id) {
  const code = errorCode(err);
  const out = { type: 'error', code, message: errorMessage(err, code) };
  if (err && err.retryable) out.retryable = true;  // trying again later may work (lost connection, 5xx)
  if (id !== undefined && id !== null) out.id = id;
  self.postMessage(out);
}

function throttled(phase) {
  let last = 0;
  return (loaded, total, force = false) => {
    const now = performance.now();
    if (!force && now - last < PROGRESS_EVERY_MS) return;
    last = now;
    self.postMessage({ type: 'progress', phase, loaded, total });
  };
}

// ---------------------------------------------------------------------------------------------
// Stores. OPFS with sync access handles is the real one: the engine reads tensors synchronously
// from it without the model ever being copied whole into memory (a phone can't spare 240 MB twice).

// A sync access handle is exclusive. One left by a worker the page just terminated (hung GPU) is
// released a moment later: wait for it briefly; another open tab keeps it, and that is an error.
async function openSyncHandle(fileHandle) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fileHandle.createSyncAccessHandle();
    } catch (err) {
      if (err.name !== 'NoModificationAllowedError' || attempt >= 10) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

class OpfsStore {
  static async open() {
    if (!navigator.storage || !navigator.storage.getDirectory) return null;
    if (typeof FileSystemFileHandle === 'undefined' ||
        !('createSyncAccessHandle' in FileSystemFileHandle.prototype)) return null;
    try {
      const dir = await navigator.storage.getDirectory();
      // Some WebKit builds hand out a directory whose files then fail (private browsing: UnknownError;
      // no backend: NotSupportedError): try the whole path once before trusting it.
      const probe = await dir.getFileHandle('.probe', { create: true });
      const handle = await probe.createSyncAccessHandle();
      await handle.close();
      await dir.removeEntry('.probe');
      return new OpfsStore(dir);
    } catch {
      return null;
    }
  }

  constructor(dir) {
    this.dir = dir;
    this.persistent = true;
    this.handle = null;  // the model's sync access handle, held while a model is in use
  }

  async readMeta() {
    let fileHandle;
    try {
      fileHandle = await this.dir.getFileHandle(META_FILE);
    } catch (err) {
      if (err.name === 'NotFoundError') return null;
      throw err;
    }
    const h = await openSyncHandle(fileHandle);
    try {
      const size = await h.getSize();
      const bytes = new Uint8Array(size);
      h.read(bytes, { at: 0 });
      return JSON.parse(new TextDecoder().decode(bytes));
    } catch {
      return null;  // a torn write: treat as nothing stored
    } finally {
      await h.close();
    }
  }

  async writeMeta(meta) {
    const fileHandle = await this.dir.getFileHandle(META_FILE, { create: true });
    const h = await openSyncHandle(fileHandle);
    try {
      const bytes = new TextEncoder().encode(JSON.stringify(meta));
      await h.truncate(0);
      h.write(bytes, { at: 0 });
      await h.flush();
    } finally {
      await h.close();
    }
  }

  async openModel() {
    if (this.handle) return;
    const fileHandle = await this.dir.getFileHandle(MODEL_FILE, { create: true });
    this.handle = await openSyncHandle(fileHandle);
  }

  async modelSize() { await this.openModel(); return await this.handle.getSize(); }
  async truncate(n) { await this.openModel(); await this.handle.truncate(n); }
  async flush() { if (this.handle) await this.handle.flush(); }

  write(bytes, at) {
    const n = this.handle.write(bytes, { at });
    if (n !== bytes.byteLength) throw codedError('storage', `Short write: ${n} of ${bytes.byteLength} bytes`);
  }

  read(offset, length) {
    const out = new Uint8Array(length);
    const n = this.handle.read(out, { at: offset });
    if (n !== length) throw codedError('model', `Model file is shorter than expected (read ${n} of ${length} bytes at ${offset})`);
    return out;
  }

  async close() {
    if (!this.handle) return;
    const h = this.handle;
    this.handle = null;
    await h.flush();
    await h.close();
  }

  async remove() {
    await this.close();
    for (const name of [MODEL_FILE, META_FILE]) {
      try {
        await this.dir.removeEntry(name);
      } catch (err) {
        if (err.name !== 'NotFoundError') throw err;
      }
    }
  }
}

// Where OPFS is missing the model lives in a JS buffer for this session only.
class MemoryStore {
  constructor() {
    this.persistent = false;
    this.meta = null;
    this.bytes = new Uint8Array(0);
    this.length = 0;
    this.file = null;  // a picked File, read in place with FileReaderSync
  }

  async readMeta() { return this.meta; }
  async writeMeta(meta) { this.meta = { ...meta }; }
  async openModel() {}
  async modelSize() { return this.file ? this.file.size : this.length; }
  async truncate(n) { this.length = Math.min(this.length, n); this.file = null; }
  async flush() {}
  async close() {}

  reserve(n) {
    if (n <= this.bytes.length) return;
    let cap = Math.max(this.bytes.length * 2, 1 << 20);
    while (cap < n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.bytes.subarray(0, this.length));
    this.bytes = next;
  }

  write(bytes, at) {
    try {
      this.reserve(at + bytes.byteLength);
    } catch (err) {
      throw codedError('storage-full', 'Not enough memory to hold the model on this device.');
    }
    this.bytes.set(bytes, at);
    this.length = Math.max(this.length, at + bytes.byteLength);
  }

  read(offset, length) {
    if (this.file) {
      const buf = new FileReaderSync().readAsArrayBuffer(this.file.slice(offset, offset + length));
      if (buf.byteLength !== length) throw codedError('model', 'Model file is shorter than expected');
      return new Uint8Array(buf);
    }
    if (offset + length > this.length) throw codedError('model', 'Model file is shorter than expected');
    return this.bytes.slice(offset, offset + length);
  }

  async remove() {
    this.meta = null;
    this.bytes = new Uint8Array(0);
    this.length = 0;
    this.file = null;
  }
}

async function getStore() {
  if (store) return store;
  store = await OpfsStore.open();
  if (!store) {
    store = new MemoryStore();
    self.postMessage({
      type: 'notice',
      message: "This browser can't keep the model on the device: it stays in memory and will download again next time.",
    });
  }
  return store;
}

function publicModel(meta) {
  return { url: meta.url, size: meta.size, sha256: meta.sha256 || null };
}

// ---------------------------------------------------------------------------------------------

async function status() {
  const s = await getStore();
  const meta = await s.readMeta();
  let partial = null;
  if (meta && !meta.complete) {
    let loaded = 0;
    try { loaded = await s.modelSize(); } catch { /* locked by another tab: report 0 */ }
    partial = { url: meta.url, loaded, size: meta.size || null };
  }
  // A wedged GPU process can leave requestAdapter() pending forever: the status must still answer.
  let webgpu = null;
  try {
    webgpu = await Promise.race([webgpuAdapterName(), new Promise((r) => setTimeout(() => r(null), 3000))]);
  } catch {
    webgpu = null;
  }
  self.postMessage({
    type: 'status',
    stored: meta && meta.complete ? publicModel(meta) : null,
    partial,
    webgpu,
    persistent: s.persistent,
  });
}

function freeEngine() {
  if (engine) {
    try { engine.free(); } catch { /* already freed by a failed call */ }
  }
  engine = null;
  model = null;
}

async function load(msg) {
  const s = await getStore();
  const source = msg.source || { kind: 'stored' };
  const backend = msg.backend || 'auto';
  freeEngine();
  reader = null;

  let meta;
  if (source.kind === 'url') {
    meta = await fetchModel(s, source.url, source.sha256 || null);
    if (!meta) return;  // aborted: "aborted" was posted
  } else if (source.kind === 'file') {
    meta = await copyFile(s, source.file);
  } else {
    meta = await s.readMeta();
    if (!meta || !meta.complete) throw codedError('storage', 'No model is stored on this device yet.');
    await s.openModel();
    const size = await s.modelSize();
    if (size !== meta.size) throw codedError('model', `The stored model is damaged (${size} of ${meta.size} bytes). Delete it and download it again.`);
  }

  reader = { size: meta.size, read: (offset, length) => s.read(offset, length) };
  const progress = throttled('load');
  progress(0, meta.size, true);
  engine = await Engine.load(reader, backend, (loaded, total) => progress(loaded, total), gpuOptions(msg.gpu));
  model = publicModel(meta);
  self.postMessage({
    type: 'ready',
    backend: engine.backend,
    adapter: engine.adapter,
    model,
    testModel: engine.isTestModel,
    submitEvery: engine.submitEvery ?? null,
    gpuLimits: engine.gpuLimits ?? null,
  });
}

// The page's GPU test settings as Engine.load's options (absent fields keep the engine's defaults).
function gpuOptions(gpu) {
  const out = {};
  if (gpu && Number.isInteger(gpu.submitEvery) && gpu.submitEvery > 0) out.submitEvery = gpu.submitEvery;
  if (gpu && (gpu.gpuLimits === 'default' || gpu.gpuLimits === 'adapter')) out.gpuLimits = gpu.gpuLimits;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Download with resume. The partial file and model.json survive a closed tab, a lost network or
// an abort; the next load of the same URL continues with a Range request.

class HttpError extends Error {
  constructor(status, url) {
    super(status === 404 || status === 410
      ? `Nothing was found at ${url} (error ${status}). Check the model address.`
      : `The server answered ${status} for ${url}. Try again later: the download continues where it stopped.`);
    this.code = 'network';
    this.status = status;
    this.retryable = status >= 500 || status === 408 || status === 429;
  }
}

async function fetchModel(s, url, sha256) {
  await refuseBlockedOrigin(url);  // before anything stored is replaced
  let meta = await s.readMeta();
  if (meta && meta.url === url && meta.complete) {
    await s.openModel();
    if ((await s.modelSize()) === meta.size) {
      if (sha256 && meta.sha256 && sha256 !== meta.sha256) {
        // Same address, new content: download again.
        await s.remove();
        meta = null;
      } else {
        return meta;
      }
    }
  }
  if (!meta || meta.url !== url || meta.complete) {
    await s.remove();
    meta = { url, size: null, sha256: sha256 || null, complete: false, etag: null };
    await s.writeMeta(meta);
  }
  if (sha256) meta.sha256 = sha256;
  if (!meta.sha256) meta.sha256 = await fetchSidecarSha256(url);

  downloadAbort = new AbortController();
  const signal = downloadAbort.signal;
  try {
    await downloadWithRetries(s, meta, signal);
  } catch (err) {
    await s.flush().catch(() => {});
    if (signal.aborted) {
      await s.writeMeta(meta).catch(() => {});
      self.postMessage({ type: 'aborted', loaded: await s.modelSize().catch(() => 0), total: meta.size });
      return null;
    }
    throw err;
  } finally {
    downloadAbort = null;
  }

  if (meta.sha256) await verify(s, meta);
  meta.complete = true;
  await s.writeMeta(meta);
  return meta;
}

async function fetchSidecarSha256(url) {
  try {
    const res = await fetch(`${url}.sha256`, { cache: 'no-store' });
    if (!res.ok) return null;
    const text = (await res.text()).slice(0, 4096);
    const m = /\b([0-9a-fA-F]{64})\b/.exec(text);
    return m ? m[1].toLowerCase() : null;
  } catch {
    return null;  // no sidecar, or offline: the download itself will say what's wrong
  }
}

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => { clearTimeout(t); reject(new DOMException('Aborted', 'AbortError')); }, { once: true });
  });
}

async function downloadWithRetries(s, meta, signal) {
  for (let attempt = 0; ; attempt++) {
    try {
      await downloadOnce(s, meta, signal);
      return;
    } catch (err) {
      if (signal.aborted) throw err;
      if (err instanceof TypeError && (await refusedByPolicy(meta.url))) {
        throw codedError('blocked', blockedMessage(meta.url));
      }
      const retryable = err instanceof TypeError || err.retryable === true;
      if (!retryable || attempt >= RETRIES) {
        if (err instanceof TypeError) {
          throw Object.assign(codedError('network', 'The connection was lost. The download continues where it stopped as soon as the connection is back, or when you choose Try again.'), { retryable: true });
        }
        throw err;
      }
      self.postMessage({ type: 'notice', message: `Connection problem; trying again (${attempt + 1} of ${RETRIES}).` });
      await sleep(1000 * 2 ** attempt, signal);
    }
  }
}

function originOf(url) {
  try {
    return new URL(url, self.location.href).origin;
  } catch {
    return null;
  }
}

// A fetch of another origin that failed: was it the Content-Security-Policy (connect-src 'self')?
// The violation event can arrive just after the fetch rejects: give it a moment.
async function refusedByPolicy(url) {
  const origin = originOf(url);
  if (!origin || origin === self.location.origin) return false;
  for (let i = 0; i < 5; i++) {
    if (violations.some((v) => originOf(v.uri) === origin)) return true;
    await new Promise((r) => setTimeout(r, 40));
  }
  return false;
}

// A model on another origin: one HEAD request first, so an address the policy refuses is reported
// before the stored model is replaced (a server that only lacks CORS fails later, as before).
async function refuseBlockedOrigin(url) {
  const origin = originOf(url);
  if (!origin || origin === self.location.origin) return;
  try {
    await fetch(url, { method: 'HEAD', cache: 'no-store' });
  } catch {
    if (await refusedByPolicy(url)) throw codedError('blocked', blockedMessage(url));
  }
}

function blockedMessage(url) {
  return `${originOf(url)} is another site than this app (${self.location.origin}). The app may only ` +
    'download from its own address, so that nothing about you or your camera can leave this device ' +
    '(its security policy blocks other sites). Put the model file beside the app, or download it ' +
    'yourself and choose “Use a model file from this device”.';
}

function parseContentRange(value) {
  // "bytes 100-199/1234" or "bytes */1234"
  const m = /^bytes\s+(?:(\d+)-(\d+)|\*)\/(\d+|\*)$/i.exec((value || '').trim());
  if (!m) return null;
  return {
    start: m[1] === undefined ? null : Number(m[1]),
    total: m[3] === '*' ? null : Number(m[3]),
  };
}

async function ensureSpace(needed) {
  if (!needed || !navigator.storage || !navigator.storage.estimate) return;
  try {
    const { quota, usage } = await navigator.storage.estimate();
    if (quota && usage !== undefined && quota - usage < needed) {
      throw codedError('storage-full', `Not enough storage: the model needs ${Math.ceil(needed / 1e6)} MB more.`);
    }
  } catch (err) {
    if (err.code === 'storage-full') throw err;
  }
}

async function downloadOnce(s, meta, signal) {
  let offset = await s.modelSize();
  if (meta.size && offset > meta.size) { await s.truncate(0); offset = 0; }
  if (meta.size && offset === meta.size) return;

  const headers = {};
  if (offset > 0) {
    headers.Range = `bytes=${offset}-`;
    // If-Range only with a strong validator: a changed file then comes back whole (200).
    if (meta.etag && !meta.etag.startsWith('W/')) headers['If-Range'] = meta.etag;
  }
  // no-store: the HTTP cache must not keep a second copy of a 240 MB file.
  const res = await fetch(meta.url, { headers, signal, cache: 'no-store' });

  if (res.status === 416 && offset > 0) {
    const range = parseContentRange(res.headers.get('content-range'));
    if (range && range.total === offset) { meta.size = offset; return; }
    await s.truncate(0);
    throw Object.assign(codedError('network', 'The server refused to continue the download; starting again.'), { retryable: true });
  }
  if (!res.ok) throw new HttpError(res.status, meta.url);

  let total = null;
  if (res.status === 206) {
    const range = parseContentRange(res.headers.get('content-range'));
    if (!range || range.start !== offset) {
      await s.truncate(0);
      throw Object.assign(codedError('network', 'The server sent the wrong part of the file; starting again.'), { retryable: true });
    }
    total = range.total;
  } else {
    // 200: the whole file (no Range support, or the file changed): start over.
    if (offset > 0) { await s.truncate(0); offset = 0; }
    const length = Number(res.headers.get('content-length'));
    // With a content-encoding the length is the compressed one: unknown until the end.
    if (length > 0 && !res.headers.get('content-encoding')) total = length;
  }
  if (total) {
    if (meta.size && meta.size !== total && offset > 0) {
      await s.truncate(0);
      throw Object.assign(codedError('network', 'The model file changed on the server; starting again.'), { retryable: true });
    }
    meta.size = total;
  }
  const etag = res.headers.get('etag');
  if (etag) meta.etag = etag;
  await s.writeMeta(meta);
  await ensureSpace(meta.size ? meta.size - offset : 0);

  const progress = throttled('download');
  progress(offset, meta.size || 0, true);
  const body = res.body.getReader();
  let sinceFlush = 0;
  let head = new Uint8Array(0);  // the first bytes, to reject a web page served in place of a model
  for (;;) {
    const { done, value } = await body.read();
    if (done) break;
    if (offset < 4) {
      const joined = new Uint8Array(head.length + value.length);
      joined.set(head);
      joined.set(value, head.length);
      head = joined;
      if (offset === 0 && head.length >= 4 && !isGguf(head)) {
        await body.cancel().catch(() => {});
        await s.truncate(0);
        throw codedError('model', `${meta.url} is not a GGUF model file (check the address).`);
      }
    }
    s.write(value, offset);
    offset += value.byteLength;
    sinceFlush += value.byteLength;
    if (sinceFlush >= FLUSH_EVERY) { await s.flush(); sinceFlush = 0; }
    progress(offset, meta.size || 0);
  }
  await s.flush();
  if (meta.size && offset !== meta.size) {
    throw Object.assign(codedError('network', `The download stopped early (${offset} of ${meta.size} bytes).`), { retryable: true });
  }
  if (offset === 0) throw codedError('model', `${meta.url} is an empty file (0 bytes), not a model.`);
  if (offset < 4) throw codedError('model', `${meta.url} is not a GGUF model file (only ${offset} bytes).`);
  meta.size = offset;
  progress(offset, offset, true);
}

function isGguf(bytes) {
  return bytes[0] === 0x47 && bytes[1] === 0x47 && bytes[2] === 0x55 && bytes[3] === 0x46;  // "GGUF"
}

async function verify(s, meta) {
  const progress = throttled('verify');
  const hash = new Sha256();
  try {
    for (let offset = 0; offset < meta.size; offset += CHUNK) {
      const length = Math.min(CHUNK, meta.size - offset);
      hash.update(s.read(offset, length));
      progress(offset + length, meta.size);
    }
    progress(meta.size, meta.size, true);
    const hex = hash.hex().toLowerCase();
    if (hex !== meta.sha256.toLowerCase()) {
      await s.remove();
      throw codedError('checksum', `The downloaded model is damaged (SHA-256 ${hex.slice(0, 12)}…, expected ${meta.sha256.slice(0, 12)}…). It was deleted; download it again.`);
    }
  } finally {
    if (hash.free) hash.free();
  }
}

// ---------------------------------------------------------------------------------------------
// A picked file is copied into OPFS (so it is there next time), hashing it on the way.

async function copyFile(s, file) {
  if (!(file instanceof Blob)) throw codedError('internal', 'No file was given.');
  if (file.size === 0) throw codedError('model', `${file.name || 'This file'} is empty (0 bytes), not a model.`);
  const head = new Uint8Array(await file.slice(0, 4).arrayBuffer());
  if (!isGguf(head)) throw codedError('model', `${file.name || 'This file'} is not a GGUF model file.`);

  await s.remove();
  const meta = { url: `file:${file.name || 'model.gguf'}`, size: file.size, sha256: null, complete: false, etag: null };
  if (!s.persistent) {
    // No OPFS: read the File in place (FileReaderSync) instead of copying it into memory.
    s.file = file;
    meta.complete = true;
    await s.writeMeta(meta);
    return meta;
  }
  await ensureSpace(file.size);
  await s.openModel();
  const progress = throttled('copy');
  const hash = new Sha256();
  try {
    for (let offset = 0; offset < file.size; offset += CHUNK) {
      const chunk = new Uint8Array(await file.slice(offset, offset + CHUNK).arrayBuffer());
      hash.update(chunk);
      s.write(chunk, offset);
      progress(offset + chunk.byteLength, file.size);
    }
    await s.flush();
    meta.sha256 = hash.hex().toLowerCase();
  } catch (err) {
    await s.remove().catch(() => {});
    throw err;
  } finally {
    if (hash.free) hash.free();
  }
  progress(file.size, file.size, true);
  meta.complete = true;
  await s.writeMeta(meta);
  return meta;
}

// ---------------------------------------------------------------------------------------------

async function caption(msg) {
  const { id, width, height } = msg;
  if (!engine) throw codedError('internal', 'No model is loaded.');
  const pixels = new Uint8Array(msg.pixels);
  let result;
  try {
    result = await engine.caption(pixels, width, height);
  } catch (err) {
    if (errorCode(err) !== 'device-lost' || !reader) throw err;
    // The GPU went away (driver reset, memory pressure, app backgrounded on iOS): carry on, slower.
    const keep = model;
    freeEngine();
    engine = await Engine.load(reader, 'cpu', () => {});
    model = keep;
    self.postMessage({ type: 'backend', backend: 'cpu', adapter: engine.adapter, reason: err.message || 'The GPU device was lost' });
    result = await engine.caption(pixels, width, height);
  }
  self.postMessage({
    type: 'caption',
    id,
    caption: result.caption,
    tokenIds: Array.from(result.tokenIds || []),
    ms: result.ms,
    backend: result.backend,
  });
}

async function remove() {
  freeEngine();
  reader = null;
  const s = await getStore();
  await s.remove();
  self.postMessage({ type: 'deleted' });
}
