// Self-test of the e2e static server (no browser): node --test tests/e2e/server.test.mjs
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import { start, parseRange, metaCsp } from './server.mjs';

function tmpTree() {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'e2e-srv-'));
  const dist = path.join(root, 'dist');
  const models = path.join(root, 'models');
  fs.mkdirSync(dist);
  fs.mkdirSync(models);
  fs.writeFileSync(path.join(dist, 'index.html'), '<!doctype html><title>x</title>');
  fs.writeFileSync(path.join(dist, 'a.wasm'), Buffer.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]));
  fs.writeFileSync(path.join(dist, 'manifest.webmanifest'), '{}');
  fs.writeFileSync(path.join(dist, 'w.js'), '1');
  fs.writeFileSync(path.join(dist, 'm.mjs'), '1');
  fs.writeFileSync(path.join(root, 'secret.txt'), 'no');
  const model = Buffer.alloc(100000);
  for (let i = 0; i < model.length; i++) model[i] = (i * 7) & 0xff;
  fs.writeFileSync(path.join(models, 'm.gguf'), model);
  return { root, dist, models, model };
}

/** Raw GET that survives a cut connection: resolves {status, headers, body, aborted}. */
function rawGet(url, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers, agent: false }, (res) => {
      const chunks = [];
      let aborted = false;
      res.on('data', (c) => chunks.push(c));
      res.on('aborted', () => (aborted = true));
      res.on('error', () => (aborted = true));
      res.on('close', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks), aborted: aborted || !res.complete }));
    });
    req.on('error', (e) => resolve({ error: e }));
  });
}

test('parseRange', () => {
  assert.deepEqual(parseRange('bytes=0-9', 100), { start: 0, end: 9 });
  assert.deepEqual(parseRange('bytes=90-', 100), { start: 90, end: 99 });
  assert.deepEqual(parseRange('bytes=-10', 100), { start: 90, end: 99 });
  assert.deepEqual(parseRange('bytes=50-1000', 100), { start: 50, end: 99 });
  assert.equal(parseRange('bytes=100-', 100), 'unsatisfiable');
  assert.equal(parseRange('bytes=0-1,5-6', 100), null);
  assert.equal(parseRange('items=0-1', 100), null);
  assert.equal(parseRange(undefined, 100), null);
});

test('static files, MIME types, ranges, ETag, faults, request log', async (t) => {
  const tree = tmpTree();
  const s = await start({ dist: tree.dist, models: tree.models });
  t.after(async () => {
    await s.close();
    fs.rmSync(tree.root, { recursive: true, force: true });
  });
  const u = (p) => s.url + p;

  let r = await fetch(u('/'));
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /^text\/html/);
  assert.equal((await fetch(u('/a.wasm'))).headers.get('content-type'), 'application/wasm');
  assert.equal((await fetch(u('/manifest.webmanifest'))).headers.get('content-type'), 'application/manifest+json');
  assert.match((await fetch(u('/w.js'))).headers.get('content-type'), /^text\/javascript/);
  assert.match((await fetch(u('/m.mjs'))).headers.get('content-type'), /^text\/javascript/);
  assert.equal((await fetch(u('/nope'))).status, 404);
  assert.equal((await rawGet(u('/../secret.txt'))).status, 404);
  assert.equal((await rawGet(u('/%2e%2e/secret.txt'))).status, 404);

  // Full model, ETag, 304.
  r = await fetch(u('/models/m.gguf'));
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('accept-ranges'), 'bytes');
  assert.equal(Number(r.headers.get('content-length')), tree.model.length);
  const etag = r.headers.get('etag');
  assert.ok(etag);
  assert.ok(Buffer.from(await r.arrayBuffer()).equals(tree.model));
  r = await fetch(u('/models/m.gguf'), { headers: { 'if-none-match': etag } });
  assert.equal(r.status, 304);

  // Ranges.
  r = await fetch(u('/models/m.gguf'), { headers: { range: 'bytes=1000-1999' } });
  assert.equal(r.status, 206);
  assert.equal(r.headers.get('content-range'), `bytes 1000-1999/${tree.model.length}`);
  assert.ok(Buffer.from(await r.arrayBuffer()).equals(tree.model.subarray(1000, 2000)));
  r = await fetch(u('/models/m.gguf'), { headers: { range: 'bytes=99990-' } });
  assert.equal(r.status, 206);
  assert.equal((await r.arrayBuffer()).byteLength, 10);
  r = await fetch(u('/models/m.gguf'), { headers: { range: `bytes=${tree.model.length}-` } });
  assert.equal(r.status, 416);
  assert.equal(r.headers.get('content-range'), `bytes */${tree.model.length}`);
  r = await fetch(u('/models/m.gguf'), { headers: { range: 'bytes=10-19', 'if-range': etag } });
  assert.equal(r.status, 206);
  r = await fetch(u('/models/m.gguf'), { headers: { range: 'bytes=10-19', 'if-range': '"stale"' } });
  assert.equal(r.status, 200);
  assert.equal((await r.arrayBuffer()).byteLength, tree.model.length);
  r = await fetch(u('/models/m.gguf'), { method: 'HEAD' });
  assert.equal(r.status, 200);
  assert.equal(Number(r.headers.get('content-length')), tree.model.length);

  // Cut after N bytes, once; then a Range request resumes.
  await fetch(u('/__test/fault'), { method: 'POST', body: JSON.stringify({ cut: { path: '/models/m.gguf', after: 30000 } }) });
  const cut = await rawGet(u('/models/m.gguf'));
  assert.equal(cut.status, 200);
  assert.equal(cut.aborted, true);
  assert.equal(cut.body.length, 30000);
  assert.ok(cut.body.equals(tree.model.subarray(0, 30000)));
  const rest = await rawGet(u('/models/m.gguf'), { range: `bytes=${cut.body.length}-` });
  assert.equal(rest.status, 206);
  assert.equal(rest.aborted, false);
  assert.ok(Buffer.concat([cut.body, rest.body]).equals(tree.model));

  // Cut also applies to a ranged request.
  await fetch(u('/__test/fault'), { method: 'POST', body: JSON.stringify({ cut: { prefix: '/models/', after: 100 } }) });
  const cut2 = await rawGet(u('/models/m.gguf'), { range: 'bytes=500-' });
  assert.equal(cut2.status, 206);
  assert.equal(cut2.body.length, 100);
  assert.equal(cut2.aborted, true);

  // Corrupt copy at another path.
  await fetch(u('/__test/fault'), {
    method: 'POST',
    body: JSON.stringify({ corrupt: { path: '/models/bad.gguf', source: '/models/m.gguf', truncate: 5000, flip: [0, 1] } }),
  });
  r = await fetch(u('/models/bad.gguf'));
  assert.equal(r.status, 200);
  const bad = Buffer.from(await r.arrayBuffer());
  assert.equal(bad.length, 5000);
  assert.equal(bad[0], tree.model[0] ^ 0xff);
  assert.equal(bad[2], tree.model[2]);

  // Throttle still delivers the whole body.
  await fetch(u('/__test/fault'), { method: 'POST', body: JSON.stringify({ throttle: { prefix: '/models/', chunk: 20000, delayMs: 5 } }) });
  r = await fetch(u('/models/m.gguf'));
  assert.ok(Buffer.from(await r.arrayBuffer()).equals(tree.model));

  // Status fault.
  await fetch(u('/__test/fault'), { method: 'POST', body: JSON.stringify({ status: { path: '/w.js', code: 503 } }) });
  assert.equal((await fetch(u('/w.js'))).status, 503);
  assert.equal((await fetch(u('/w.js'))).status, 200);

  // Offline refuses everything but the control API.
  await fetch(u('/__test/fault'), { method: 'POST', body: JSON.stringify({ offline: true }) });
  const off = await rawGet(u('/'));
  assert.ok(off.error, 'offline request fails');
  await fetch(u('/__test/fault'), { method: 'POST', body: JSON.stringify({ offline: false }) });
  assert.equal((await fetch(u('/'))).status, 200);

  // The log.
  const log = await (await fetch(u('/__test/requests'))).json();
  assert.ok(log.some((x) => x.path === '/models/m.gguf' && x.range === 'bytes=30000-' && x.status === 206));
  assert.ok(log.some((x) => x.cut === true && x.bytes === 30000));
  assert.ok(log.some((x) => x.status === 'refused'));
  assert.ok(!log.some((x) => x.path.startsWith('/__test/')));
  await fetch(u('/__test/reset'), { method: 'POST' });
  assert.equal((await (await fetch(u('/__test/requests'))).json()).length, 0);
});

test('Content-Security-Policy header from the <meta> of index.html', async (t) => {
  const tree = tmpTree();
  const policy = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'";
  fs.writeFileSync(path.join(tree.dist, 'index.html'),
    `<!doctype html><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" content="${policy}" /><title>x</title>`);
  assert.equal(metaCsp(fs.readFileSync(path.join(tree.dist, 'index.html'), 'utf8')), policy);
  assert.equal(metaCsp('<meta name="description" content="x">'), null);
  const s = await start({ dist: tree.dist, models: tree.models });
  const none = await start({ dist: tree.dist, models: tree.models, csp: null });
  t.after(async () => {
    await s.close();
    await none.close();
    fs.rmSync(tree.root, { recursive: true, force: true });
  });
  const want = `${policy}; frame-ancestors 'none'`;
  assert.equal(s.csp, want);
  for (const p of ['/', '/w.js', '/a.wasm', '/models/m.gguf', '/missing']) {
    assert.equal((await fetch(s.url + p)).headers.get('content-security-policy'), want, p);
  }
  assert.equal((await fetch(none.url + '/w.js')).headers.get('content-security-policy'), null);
});
