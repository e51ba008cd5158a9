// A small static server for a Trunk dist directory, with test-controlled faults.
// No dependencies. Used by run.mjs / webkit.mjs; also runs standalone:
//
//   node tests/e2e/server.mjs --dist dist [--models DIR] [--port 8080] [--host 127.0.0.1] [--coi] [--no-csp]
//
// Every response carries the app's Content-Security-Policy header (as a deployment must: the
// <meta> policy in index.html does not cover worker.js or sw.js). The policy is read from the
// <meta http-equiv="Content-Security-Policy"> of dist/index.html, plus `frame-ancestors 'none'`
// (header-only); `csp: null` (--no-csp) sends none, a string sends that.
// Serves:
//   /...           files from `dist` (`/` and directories -> index.html)
//   /models/...    files from `models` when given (else dist/models/...)
// with MIME types (.wasm application/wasm, .webmanifest application/manifest+json, .js/.mjs
// text/javascript, ...), ETag (+ If-None-Match -> 304), Range (206 + Content-Range,
// Accept-Ranges: bytes, If-Range, 416 + `Content-Range: bytes */size`), HEAD.
//
// Control API (never recorded, never faulted):
//   GET  /__test/requests        -> JSON array of every request seen so far
//   POST /__test/reset           -> clears the request log and every fault
//   POST /__test/fault  {JSON}   -> sets faults; any subset of:
//     {"cut": {"path": "/models/x.gguf" | "prefix": "/models/", "after": N, "times": 1}}
//         the next `times` matching GETs send their headers (full length) and N body bytes,
//         then the connection is destroyed (an interrupted download).
//     {"corrupt": {"path": "/models/bad.gguf", "source": "/models/good.gguf",
//                  "truncate": N?, "flip": [offset, ...]?, "bytes": "base64"?}}
//         serve in-memory bytes at `path`: a copy of `source` cut to N bytes and/or with the
//         bytes at the given offsets inverted (negative offsets count from the end).
//     {"offline": true|false}  refuse every request (connection destroyed, no response).
//     {"throttle": {"prefix": "/models/", "chunk": 65536, "delayMs": 20} | null}
//         send matching bodies in chunks with a pause between them (observable progress).
//     {"status": {"path": "/x", "code": 503, "times": 1}}  answer with that status and no body.
//     {"clear": true}  drops every fault first.
//   GET  /__test/state           -> the current faults (for debugging)

import http from 'node:http';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import crypto from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.htm': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.wasm': 'application/wasm',
  '.webmanifest': 'application/manifest+json',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.gguf': 'application/octet-stream',
  '.bin': 'application/octet-stream',
  '.y4m': 'video/x-yuv4mpeg',
  '.woff2': 'font/woff2',
};

export function mimeOf(file) {
  return MIME[path.extname(file).toLowerCase()] || 'application/octet-stream';
}

/** Parses a Range header against `size`. Returns null (no/ignored range), {start, end} or 'unsatisfiable'. */
export function parseRange(header, size) {
  if (!header) return null;
  const m = /^\s*bytes\s*=\s*(.+)$/i.exec(header);
  if (!m) return null; // unknown unit: ignore
  const specs = m[1].split(',').map((s) => s.trim()).filter(Boolean);
  if (specs.length !== 1) return null; // multiple ranges: answer 200 with the whole file (allowed)
  const r = /^(\d*)-(\d*)$/.exec(specs[0]);
  if (!r || (r[1] === '' && r[2] === '')) return null; // malformed: ignore
  let start;
  let end;
  if (r[1] === '') {
    const suffix = Number(r[2]);
    if (suffix === 0) return 'unsatisfiable';
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(r[1]);
    end = r[2] === '' ? size - 1 : Math.min(Number(r[2]), size - 1);
    if (r[2] !== '' && Number(r[2]) < start) return null; // invalid: ignore
  }
  if (start >= size || size === 0) return 'unsatisfiable';
  return { start, end };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The policy of the first <meta http-equiv="Content-Security-Policy"> in an HTML text, or null. */
export function metaCsp(html) {
  for (const m of html.matchAll(/<meta\b[^>]*>/gi)) {
    const tag = m[0];
    if (!/http-equiv\s*=\s*["']?content-security-policy["'\s/>]/i.test(tag)) continue;
    const c = /\bcontent\s*=\s*"([^"]*)"/i.exec(tag) || /\bcontent\s*=\s*'([^']*)'/i.exec(tag);
    return c ? c[1].trim() : null;
  }
  return null;
}

/** The header policy for a dist: its index.html's <meta> policy plus frame-ancestors 'none'. */
export function headerCspFor(dist) {
  let html;
  try {
    html = fs.readFileSync(path.join(dist, 'index.html'), 'utf8');
  } catch {
    return null;
  }
  const meta = metaCsp(html);
  if (!meta) return null;
  return /(^|;)\s*frame-ancestors\b/i.test(meta) ? meta : `${meta.replace(/;\s*$/, '')}; frame-ancestors 'none'`;
}

function freshFaults() {
  return { cut: [], corrupt: new Map(), offline: false, throttle: null, status: [] };
}

/**
 * Starts the server. Returns {url, port, server, requests, faults, close()}.
 * options: dist (required), models (optional dir for /models/), port (0 = any), host, coi (COOP/COEP headers),
 * csp ('auto': from dist/index.html, see headerCspFor; a string; null: none), quiet.
 */
export async function start({ dist, models = null, port = 0, host = '127.0.0.1', coi = false, csp = 'auto', quiet = true } = {}) {
  if (!dist) throw new Error('start: dist is required');
  const distRoot = path.resolve(dist);
  const cspHeader = csp === 'auto' ? headerCspFor(distRoot) : csp || null;
  const modelsRoot = models ? path.resolve(models) : null;
  const requests = [];
  let faults = freshFaults();
  let seq = 0;
  const sockets = new Set();

  function resolveFile(urlPath) {
    let decoded;
    try {
      decoded = decodeURIComponent(urlPath);
    } catch {
      return null;
    }
    if (decoded.includes('\0')) return null;
    let root = distRoot;
    let rel = decoded;
    if (modelsRoot && (decoded === '/models' || decoded.startsWith('/models/'))) {
      root = modelsRoot;
      rel = decoded.slice('/models'.length) || '/';
    }
    const file = path.resolve(root, '.' + path.posix.normalize(rel));
    if (file !== root && !file.startsWith(root + path.sep)) return null; // traversal
    return file;
  }

  async function loadBytes(urlPath) {
    const file = resolveFile(urlPath);
    if (!file) return null;
    try {
      return await fsp.readFile(file);
    } catch {
      return null;
    }
  }

  function matches(rule, p) {
    if (rule.path) return rule.path === p;
    if (rule.prefix) return p.startsWith(rule.prefix);
    return p.startsWith('/models/');
  }

  async function handleControl(req, res, p) {
    const send = (code, obj) => {
      const body = JSON.stringify(obj);
      res.writeHead(code, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(body);
    };
    if (p === '/__test/requests' && req.method === 'GET') return send(200, requests);
    if (p === '/__test/state' && req.method === 'GET') {
      return send(200, { ...faults, corrupt: [...faults.corrupt.keys()] });
    }
    if (p === '/__test/reset' && req.method === 'POST') {
      requests.length = 0;
      faults = freshFaults();
      return send(200, { ok: true });
    }
    if (p === '/__test/fault' && req.method === 'POST') {
      let body = '';
      for await (const chunk of req) body += chunk;
      let f;
      try {
        f = JSON.parse(body || '{}');
      } catch (e) {
        return send(400, { error: 'bad JSON: ' + e.message });
      }
      if (f.clear) faults = freshFaults();
      if (f.cut) faults.cut.push({ after: 0, times: 1, ...f.cut });
      if (f.status) faults.status.push({ times: 1, ...f.status });
      if ('offline' in f) faults.offline = !!f.offline;
      if ('throttle' in f) faults.throttle = f.throttle ? { chunk: 65536, delayMs: 20, ...f.throttle } : null;
      if (f.corrupt) {
        const c = f.corrupt;
        let bytes;
        if (c.bytes) bytes = Buffer.from(c.bytes, 'base64');
        else {
          const src = await loadBytes(c.source);
          if (!src) return send(400, { error: 'corrupt.source not found: ' + c.source });
          bytes = Buffer.from(src);
        }
        if (typeof c.truncate === 'number') bytes = bytes.subarray(0, c.truncate);
        for (const off of c.flip || []) {
          const i = off < 0 ? bytes.length + off : off;
          if (i >= 0 && i < bytes.length) bytes[i] ^= 0xff;
        }
        faults.corrupt.set(c.path, bytes);
      }
      return send(200, { ok: true });
    }
    return send(404, { error: 'unknown control endpoint' });
  }

  async function writeBody(res, buf, p, rec, cutRule) {
    const th = faults.throttle && matches(faults.throttle, p) ? faults.throttle : null;
    const limit = cutRule ? Math.min(cutRule.after, buf.length) : buf.length;
    const chunk = th ? th.chunk : 1 << 20;
    let off = 0;
    while (off < limit) {
      if (res.destroyed) return;
      const piece = buf.subarray(off, Math.min(limit, off + chunk));
      off += piece.length;
      const ok = res.write(piece);
      rec.bytes = off;
      if (!ok) await new Promise((r) => res.once('drain', r));
      if (th && off < limit) await sleep(th.delayMs);
    }
    if (cutRule) {
      rec.cut = true;
      // Let the bytes reach the client, then kill the connection mid-body.
      await new Promise((r) => setTimeout(r, 50));
      res.socket?.destroy();
      res.destroy();
      return;
    }
    res.end();
  }

  async function handle(req, res) {
    const u = new URL(req.url, 'http://x');
    const p = u.pathname;
    if (p.startsWith('/__test/')) return handleControl(req, res, p);

    const rec = {
      seq: ++seq,
      time: Date.now(),
      method: req.method,
      url: req.url,
      path: p,
      range: req.headers['range'] || null,
      ifRange: req.headers['if-range'] || null,
      ifNoneMatch: req.headers['if-none-match'] || null,
      serviceWorker: req.headers['service-worker'] || null,
      secFetchDest: req.headers['sec-fetch-dest'] || null,
      userAgent: req.headers['user-agent'] || null,
      // A request body (the privacy scenario asserts the page never sends one).
      contentLength: req.headers['content-length'] !== undefined ? Number(req.headers['content-length']) : null,
      chunked: /chunked/i.test(req.headers['transfer-encoding'] || ''),
      status: null,
      bytes: 0,
    };
    requests.push(rec);

    if (faults.offline) {
      rec.status = 'refused';
      req.socket.destroy();
      return;
    }
    const st = faults.status.find((s) => s.times > 0 && matches(s, p));
    if (st) {
      st.times--;
      rec.status = st.code;
      res.writeHead(st.code, { 'cache-control': 'no-store', 'content-length': 0 });
      return res.end();
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      rec.status = 405;
      res.writeHead(405, { allow: 'GET, HEAD' });
      return res.end();
    }

    let buf;
    let etag;
    let lastModified;
    let type;
    if (faults.corrupt.has(p)) {
      buf = faults.corrupt.get(p);
      etag = '"c-' + crypto.createHash('sha1').update(buf).digest('hex').slice(0, 16) + '"';
      lastModified = new Date().toUTCString();
      type = mimeOf(p);
    } else {
      let file = resolveFile(p);
      let stat = null;
      if (file) {
        try {
          stat = await fsp.stat(file);
          if (stat.isDirectory()) {
            file = path.join(file, 'index.html');
            stat = await fsp.stat(file);
          }
        } catch {
          stat = null;
        }
      }
      if (!stat || !stat.isFile()) {
        rec.status = 404;
        res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', ...(cspHeader ? { 'content-security-policy': cspHeader } : {}) });
        return res.end('not found: ' + p + '\n');
      }
      buf = await fsp.readFile(file);
      etag = '"' + stat.size.toString(16) + '-' + Math.floor(stat.mtimeMs).toString(16) + '"';
      lastModified = stat.mtime.toUTCString();
      type = mimeOf(file);
    }

    const headers = {
      'content-type': type,
      etag,
      'last-modified': lastModified,
      'accept-ranges': 'bytes',
      'cache-control': 'no-cache',
    };
    if (cspHeader) headers['content-security-policy'] = cspHeader;
    if (coi) {
      headers['cross-origin-opener-policy'] = 'same-origin';
      headers['cross-origin-embedder-policy'] = 'require-corp';
      headers['cross-origin-resource-policy'] = 'same-origin';
    }

    const inm = req.headers['if-none-match'];
    if (inm && !req.headers['range'] && inm.split(',').map((s) => s.trim().replace(/^W\//, '')).includes(etag)) {
      rec.status = 304;
      res.writeHead(304, { etag, 'cache-control': 'no-cache' });
      return res.end();
    }

    let range = parseRange(req.headers['range'], buf.length);
    const ifRange = req.headers['if-range'];
    if (range && ifRange && ifRange !== etag && ifRange !== lastModified) range = null; // changed: whole file

    if (range === 'unsatisfiable') {
      rec.status = 416;
      res.writeHead(416, { 'content-range': `bytes */${buf.length}`, 'accept-ranges': 'bytes', etag, 'content-length': 0 });
      return res.end();
    }
    let body = buf;
    let code = 200;
    if (range) {
      code = 206;
      body = buf.subarray(range.start, range.end + 1);
      headers['content-range'] = `bytes ${range.start}-${range.end}/${buf.length}`;
    }
    headers['content-length'] = body.length;
    rec.status = code;
    rec.size = buf.length;

    const cutIdx = req.method === 'GET' ? faults.cut.findIndex((c) => c.times > 0 && matches(c, p)) : -1;
    let cutRule = null;
    if (cutIdx >= 0) {
      cutRule = faults.cut[cutIdx];
      cutRule.times--;
      if (cutRule.times <= 0) faults.cut.splice(cutIdx, 1);
    }
    res.writeHead(code, headers);
    if (req.method === 'HEAD') return res.end();
    await writeBody(res, body, p, rec, cutRule);
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((e) => {
      if (!quiet) console.error('server error', e);
      try {
        if (!res.headersSent) res.writeHead(500);
        res.end();
      } catch {}
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.keepAliveTimeout = 2000;
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const actualPort = server.address().port;
  const shownHost = host === '127.0.0.1' || host === '0.0.0.0' ? '127.0.0.1' : host;
  return {
    url: `http://${shownHost}:${actualPort}`,
    port: actualPort,
    csp: cspHeader,
    server,
    requests,
    get faults() {
      return faults;
    },
    close() {
      return new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
        server.closeAllConnections?.();
      });
    },
  };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const usage = 'usage: node server.mjs --dist DIR [--models DIR] [--port N] [--host H] [--coi] [--no-csp]';
  let a;
  try {
    ({ values: a } = parseArgs({
      options: {
        dist: { type: 'string' },
        models: { type: 'string' },
        port: { type: 'string' },
        host: { type: 'string' },
        coi: { type: 'boolean' },
        'no-csp': { type: 'boolean' },
      },
    }));
  } catch (e) {
    console.error(`${e.message}\n${usage}`);
    process.exit(2);
  }
  if (!a.dist) {
    console.error(usage);
    process.exit(2);
  }
  const s = await start({ dist: a.dist, models: a.models || null, port: Number(a.port || 8080), host: a.host || '127.0.0.1', coi: !!a.coi, csp: a['no-csp'] ? null : 'auto', quiet: false });
  console.log(`serving ${path.resolve(a.dist)} at ${s.url}/` + (a.models ? ` (models: ${path.resolve(a.models)})` : ''));
  const stop = () => s.close().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
