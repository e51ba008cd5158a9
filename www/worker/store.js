// The model store. OPFS with sync access handles is the real one: the engine reads tensors
// synchronously from it without the model ever being copied whole into memory (a phone can't
// spare 240 MB twice). Where OPFS is missing the model lives in memory for this visit only.
import { FromWorker } from '../js/protocol.js';
import { codedError } from './errors.js';
import { adapterName } from './webgpu.js';

const MODEL_FILE = 'model.gguf';
const META_FILE = 'model.json';

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

let store = null;

/** The store, opened on first use (OPFS where it works, else memory, which the page is told). */
export async function getStore() {
  if (store) return store;
  store = await OpfsStore.open();
  if (!store) {
    store = new MemoryStore();
    self.postMessage({
      type: FromWorker.NOTICE,
      message: "This browser can't keep the model on the device: it stays in memory and will download again next time.",
    });
  }
  return store;
}

/** The store if one was opened (diagnostics must not open it, nor post its notice). */
export function openedStore() {
  return store;
}

/** A stored model as the page sees it. */
export function publicModel(meta) {
  return { url: meta.url, size: meta.size, sha256: meta.sha256 || null };
}

/** The answer to {type:"status"}: what is stored, what could run it. */
export async function status() {
  const s = await getStore();
  const meta = await s.readMeta();
  let partial = null;
  if (meta && !meta.complete) {
    let loaded = 0;
    try { loaded = await s.modelSize(); } catch { /* locked by another tab: report 0 */ }
    partial = { url: meta.url, loaded, size: meta.size || null };
  }
  self.postMessage({
    type: FromWorker.STATUS,
    stored: meta && meta.complete ? publicModel(meta) : null,
    partial,
    webgpu: await adapterName(),
    persistent: s.persistent,
  });
}

/** The stored model, checked whole, ready to be read: its metadata. */
export async function storedModel(s) {
  const meta = await s.readMeta();
  if (!meta || !meta.complete) throw codedError('storage', 'No model is stored on this device yet.');
  await s.openModel();
  const size = await s.modelSize();
  if (size !== meta.size) throw codedError('model', `The stored model is damaged (${size} of ${meta.size} bytes). Delete it and download it again.`);
  return meta;
}
