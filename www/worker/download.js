// Getting the model file into the store: a download that resumes (the partial file and
// model.json survive a closed tab, a lost network or an abort; the next load of the same URL
// continues with a Range request), checked against a SHA-256 (given, or a `.sha256` sidecar beside
// the model), or a picked file copied in.
import { Sha256 } from '../edgecap.js';
import { FromWorker } from '../js/protocol.js';
import { codedError } from './errors.js';
import { throttled } from './progress.js';
import { storedModel } from './store.js';

const CHUNK = 4 * 1024 * 1024;           // hashing and file copy read this much at a time
const RETRIES = 5;                      // network errors during a download
const FLUSH_EVERY = 16 * 1024 * 1024;   // so a killed tab loses at most this much of a download

let downloadAbort = null;  // AbortController of the running download

/** Stops the running download, if any (it stays resumable). */
export function abortDownload() {
  if (downloadAbort) downloadAbort.abort();
}

/** The metadata of the model a load message's `source` names, once it is whole in store `s`;
 *  null when the download was aborted ("aborted" has been posted). */
export async function modelSource(s, source = { kind: 'stored' }) {
  if (source.kind === 'url') return fetchModel(s, source.url, source.sha256 || null);
  if (source.kind === 'file') return copyFile(s, source.file);
  return storedModel(s);
}

// Content-Security-Policy violations seen in this worker (a blocked fetch of another origin), so a
// refused model address is reported as such instead of as a lost connection.
const violations = [];
self.addEventListener('securitypolicyviolation', (e) => {
  violations.push({ uri: e.blockedURI, directive: e.effectiveDirective || e.violatedDirective });
  if (violations.length > 20) violations.shift();
});

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
      self.postMessage({ type: FromWorker.ABORTED, loaded: await s.modelSize().catch(() => 0), total: meta.size });
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
      self.postMessage({ type: FromWorker.NOTICE, message: `Connection problem; trying again (${attempt + 1} of ${RETRIES}).` });
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
