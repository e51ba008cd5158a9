// Chromium scenarios about privacy and bad input (registered by run.mjs, which passes its helpers):
//   privacy-no-external-requests  nothing leaves the app's origin; no request body; the CSP holds
//   model-url-other-origin        a model address on another origin fails at once, clearly; way out
//   bad-models                    lying / empty / truncated / wrong-magic models → error + a way out
//   bad-photos                    empty, text, truncated, zero-size, 1x1 and bomb photos
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import crypto from 'node:crypto';
import { metaCsp } from './server.mjs';
import { REPO } from './fixtures.mjs';
import { workerStats } from './harness.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * "Everything else": a server that stands for another origin (fetched directly) and for the whole
 * internet (Chromium's proxy, which every non-loopback request goes through). Whatever reaches it
 * is a leak. It answers 200 with permissive CORS, so only the app's own policy can stop a request.
 */
async function startTrap() {
  const log = [];
  const server = http.createServer((req, res) => {
    log.push({ method: req.method, url: req.url, host: req.headers.host });
    res.writeHead(200, { 'content-type': 'text/plain', 'access-control-allow-origin': '*' });
    res.end('trap');
  });
  server.on('connect', (req, socket) => {
    log.push({ method: 'CONNECT', url: req.url });
    socket.destroy();
  });
  const sockets = new Set();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const port = server.address().port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    log,
    close: () => new Promise((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}

// Google services headless Chromium connects to by itself (seen with no app at all, on a data: page).
const CHROMIUM_SERVICES = /^((accounts|www|android\.clients|clients\d*)\.google\.com|[a-z0-9-]+\.googleapis\.com|[a-z0-9-]+\.gvt1\.com)$/;

/** The host of a proxied request: "host:443" (CONNECT) or an absolute URL. */
function hostOf(u) {
  if (/^https?:\/\//.test(u)) return new URL(u).hostname;
  return u.replace(/:\d+$/, '');
}

/** Every file of the built app, as a URL path ("/js/app.js"), plus "/" (models excluded). */
function appAssets(dist) {
  const out = new Set(['/']);
  const walk = (dir, rel) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      if (rel === '' && e.name === 'models') continue;
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p, `${rel}/${e.name}`);
      else out.add(`${rel}/${e.name}`);
    }
  };
  walk(dist, '');
  return out;
}

// Hosts and calls of common analytics, tracking and error-reporting services.
const TRACKERS = [
  'google-analytics.com', 'googletagmanager.com', 'analytics.google.com', 'doubleclick.net', 'gtag(',
  'segment.io', 'segment.com', 'mixpanel', 'amplitude.com', 'hotjar', 'sentry.io', 'plausible.io',
  'matomo', 'piwik', 'facebook.net', 'connect.facebook', 'clarity.ms', 'newrelic', 'nr-data.net',
  'datadoghq', 'bugsnag', 'fullstory', 'heap.io', 'heapanalytics', 'posthog', 'logrocket', 'cloudflareinsights',
  'sendBeacon', 'new WebSocket', 'new EventSource',
];

/** Files of the dist that mention a tracker, and every http(s) host named in them. */
function scanDist(dist) {
  const hits = [];
  const hosts = new Map();
  const walk = (dir) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) {
        if (path.relative(dist, p) !== 'models') walk(p);
        continue;
      }
      if (!/\.(js|mjs|html|css|json|webmanifest|wasm|txt|svg)$/i.test(e.name)) continue;
      const text = fs.readFileSync(p).toString('latin1');
      for (const t of TRACKERS) if (text.toLowerCase().includes(t.toLowerCase())) hits.push(`${path.relative(dist, p)}: ${t}`);
      for (const m of text.matchAll(/https?:\/\/([A-Za-z0-9.-]+)/g)) {
        const f = path.relative(dist, p);
        if (!hosts.has(m[1])) hosts.set(m[1], new Set());
        hosts.get(m[1]).add(f);
      }
    }
  };
  walk(dist);
  return { hits, hosts: [...hosts].map(([h, files]) => `${h} (${[...files].join(', ')})`) };
}

/** The Content-Security-Policy header value that Trunk.toml's [serve.headers] sends. */
function trunkTomlCsp() {
  const toml = fs.readFileSync(path.join(REPO, 'Trunk.toml'), 'utf8');
  const m = /^\s*"Content-Security-Policy"\s*=\s*"([^"]*)"/m.exec(toml);
  return m ? m[1] : null;
}

/**
 * Waits until the worker has answered `count` more captions than `before` (window.__e2e.fromWorker),
 * and returns how many; fails at once on state error or a worker error, and after timeoutMs.
 */
async function waitAutoCaptions(page, before, count, timeoutMs) {
  const handle = await page.waitForFunction(({ before, count }) => {
    const msgs = window.__e2e.fromWorker;
    const n = msgs.filter((m) => m.type === 'caption').length - before;
    const failed = document.body.dataset.state === 'error' || msgs.some((m) => m.type === 'error' && m.id !== undefined);
    return n >= count || failed ? { n, failed } : false;
  }, { before, count }, { timeout: timeoutMs, polling: 100 }).catch(() => null);
  const r = handle ? await handle.jsonValue() : null;
  if (!r || r.failed) {
    const snap = await page.evaluate(() => ({ state: document.body.dataset.state, n: window.__e2e.fromWorker.filter((m) => m.type === 'caption').length, error: (document.querySelector('#error') || {}).textContent }));
    throw new Error(`automatic mode: ${r ? 'the app failed' : `fewer than ${count} captions after ${timeoutMs / 1000} s`} (${snap.n - before} so far; state ${snap.state}, #error ${JSON.stringify(snap.error)})`);
  }
  return r.n;
}

export function registerSafetyScenarios(h) {
  const { scenario, withChromium, waitState, captureOnce, snapshot, hooks, fault, requestLog, cliNote, MODEL_URL, DENY_CAMERA } = h;


  const visible = (page, sel) => page.locator(sel).first().isVisible().catch(() => false);

  // -------------------------------------------------------------------------------------------
  scenario('privacy-no-external-requests', async (S) => {
    const trap = await startTrap();
    S.cleanups.add(trap.close);
    const sha = crypto.createHash('sha256').update(fs.readFileSync(S.fx.model)).digest('hex');
    await fault(S, { corrupt: { path: `${MODEL_URL}.sha256`, bytes: Buffer.from(`${sha}  tiny-q8_0.gguf\n`).toString('base64') } });
    const origin = new URL(S.server.url).origin;
    return withChromium(S, {
      webgpu: false,
      camera: 'moving',
      allowCsp: true,  // this scenario provokes violations on purpose, and checks them itself
      // Every request not to a loopback address goes through the trap.
      flags: [`--proxy-server=http://127.0.0.1:${trap.port}`],
    }, async ({ context, page, csp }) => {
      const seen = [];
      context.on('request', (r) => {
        let body = null;
        try {
          body = r.postDataBuffer();
        } catch {}
        let from = 'page or worker';
        try {
          if (r.serviceWorker()) from = 'service worker';
        } catch {}
        seen.push({ url: r.url(), method: r.method(), bodyBytes: body ? body.length : 0, from, type: r.resourceType() });
      });
      const sockets = [];
      page.on('websocket', (ws) => sockets.push(ws.url()));

      await page.goto(`${S.server.url}/?model=${MODEL_URL}&auto-interval=400`);
      await waitState(page, 'ready', { timeout: 90000 });
      // Let the service worker install (it precaches the app) and take control.
      await page.evaluate(() => Promise.race([navigator.serviceWorker.ready, new Promise((r) => setTimeout(r, 15000))]));
      if (!(await page.evaluate(() => !!navigator.serviceWorker.controller))) {
        await page.reload();
        await waitState(page, 'ready', { timeout: 60000 });
      }
      // Taps, then automatic mode, then a photo.
      const taps = [];
      for (let i = 0; i < 3; i++) taps.push((await captureOnce(page)).caption);
      const nBefore = (await hooks(page)).fromWorker.filter((m) => m.type === 'caption').length;
      await page.locator('#auto').check();
      // Chromium's fake camera keeps changing, so automatic mode keeps describing it (auto-mode.js);
      // wait for three of its captions however slow the machine is, not for a count in a window.
      // The wait ends on the condition (seconds); its timeout is only a failure bound.
      const tAuto = Date.now();
      const autoCaptions = await waitAutoCaptions(page, nBefore, 3, 120000);
      const autoSeconds = ((Date.now() - tAuto) / 1000).toFixed(1);
      await page.locator('#auto').uncheck();
      await waitState(page, 'ready', { timeout: 60000 });
      const photo = await captureOnce(page, { trigger: () => page.locator('#library').setInputFiles(S.fx.photoPng) });
      // The page's own record (made as each violation event fires) as well as what has reached us.
      const pageCsp = await page.evaluate(() => window.__e2e.csp);
      if (csp.length || pageCsp.length) throw new Error(`Content-Security-Policy violation(s) while the app ran: ${JSON.stringify([...csp, ...pageCsp].slice(0, 4))}`);
      const appSeen = [...seen];
      const serverLog = await requestLog(S);

      // The policy is in force: each of these is blocked and reported.
      const probes = await page.evaluate(async (other) => {
        const out = {};
        const s = document.createElement('script');
        s.textContent = 'window.__e2eInlineRan = true;';
        document.head.appendChild(s);
        out.inlineScriptRan = window.__e2eInlineRan === true;
        // From a timer, so it runs as page code (code run directly by DevTools' evaluate is exempt).
        out.eval = await new Promise((resolve) => setTimeout(() => {
          try {
            resolve(String(eval('"eval ran"')));  // eslint-disable-line no-eval
          } catch (e) {
            resolve(e.name);
          }
        }, 0));
        const el = document.createElement('div');
        document.body.appendChild(el);
        el.setAttribute('style', 'width: 123px');
        out.inlineStyleApplied = getComputedStyle(el).width === '123px';
        el.remove();
        try {
          const r = await fetch(`${other}/upload`, { method: 'POST', body: 'frame pixels would go here' });
          out.fetch = `fetched ${r.status}`;
        } catch (e) {
          out.fetch = String(e);
        }
        out.image = await new Promise((resolve) => {
          const img = new Image();
          img.onload = () => resolve('loaded');
          img.onerror = () => resolve('blocked');
          img.src = `${other}/pixel.png`;
        });
        return out;
      }, trap.url);
      // Violation events are queued as tasks: wait until the five probes' events have fired (the page
      // records them as they do), with a generous bound, rather than a fixed pause.
      const expected = ['script-src-elem', 'script-src', 'style-src-attr', 'connect-src', 'img-src'];
      await page.waitForFunction((want) => want.every((d) => window.__e2e.csp.some((v) => v.directive === d)), expected, { timeout: 30000, polling: 50 }).catch(() => {});
      const directives = [...new Set([...csp.filter((v) => v.where === 'page event'), ...(await page.evaluate(() => window.__e2e.csp))].map((v) => v.directive))].sort();
      const problems = [];
      if (probes.inlineScriptRan) problems.push('an injected inline <script> ran');
      if (probes.eval === 'eval ran') problems.push('eval() ran');
      if (probes.inlineStyleApplied) problems.push('an inline style attribute applied');
      if (/^fetched/.test(probes.fetch)) problems.push(`a fetch to another origin succeeded (${probes.fetch})`);
      if (probes.image === 'loaded') problems.push('an image from another origin loaded');
      for (const d of expected) {
        if (!directives.includes(d)) problems.push(`no ${d} violation reported within 30 s`);
      }

      // Requests: browser side (page, dedicated worker, service worker) and server side.
      const foreign = appSeen.filter((r) => !/^(data|blob):/.test(r.url) && new URL(r.url).origin !== origin);
      if (foreign.length) problems.push(`requests to other origins: ${JSON.stringify(foreign.slice(0, 5))}`);
      const withBody = appSeen.filter((r) => !['GET', 'HEAD'].includes(r.method) || r.bodyBytes > 0);
      if (withBody.length) problems.push(`requests with a method other than GET/HEAD or a body: ${JSON.stringify(withBody.slice(0, 5))}`);
      const serverBodies = serverLog.filter((r) => !['GET', 'HEAD'].includes(r.method) || r.contentLength > 0 || r.chunked);
      if (serverBodies.length) problems.push(`the server got requests with a body: ${JSON.stringify(serverBodies.slice(0, 5))}`);
      if (sockets.length) problems.push(`WebSockets opened: ${sockets.join(', ')}`);
      // Chromium itself talks to Google's services (sign-in, autofill, time) even on a data: page
      // with these flags: those connections are the browser's, not the app's (whose every request
      // is in the browser-side log above, and none is off-origin). Anything else is a leak.
      const browserOwn = trap.log.filter((r) => r.method === 'CONNECT' || /^https?:\/\//.test(r.url))
        .filter((r) => CHROMIUM_SERVICES.test(hostOf(r.url)));
      const leaks = trap.log.filter((r) => !browserOwn.includes(r));
      if (leaks.length) problems.push(`requests reached the outside (trap): ${JSON.stringify(leaks.slice(0, 5))}`);
      const assets = appAssets(S.dist);
      const model = new Set([MODEL_URL, `${MODEL_URL}.sha256`]);
      const other = serverLog.filter((r) => !assets.has(r.path) && !model.has(r.path));
      if (other.length) problems.push(`requests for something other than the app's files and the model: ${JSON.stringify(other.map((r) => r.url).slice(0, 8))}`);
      const modelGets = serverLog.filter((r) => r.path === MODEL_URL);
      if (!modelGets.length) problems.push('the model download was not seen by the server');
      if (!appSeen.some((r) => r.url.endsWith(MODEL_URL))) problems.push("the browser-side log lacks the worker's model download (worker requests not observed?)");
      const swSeen = appSeen.filter((r) => r.from === 'service worker').length;

      // The header policy (what covers worker.js and sw.js) and the page's <meta> policy agree,
      // and trunk serve (Trunk.toml) sends the same header.
      const meta = metaCsp(fs.readFileSync(path.join(S.dist, 'index.html'), 'utf8'));
      const want = `${meta}; frame-ancestors 'none'`;
      for (const p of ['/', '/worker.js', '/sw.js', '/edgecap_bg.wasm']) {
        const got = (await fetch(S.server.url + p)).headers.get('content-security-policy');
        if (got !== want) problems.push(`${p} is served with Content-Security-Policy ${JSON.stringify(got)}, expected the <meta> policy + frame-ancestors`);
      }
      const toml = trunkTomlCsp();
      if (toml !== want) problems.push(`Trunk.toml [serve.headers] Content-Security-Policy ${JSON.stringify(toml)} differs from the <meta> policy + frame-ancestors ${JSON.stringify(want)}`);
      for (const d of ["script-src 'self' 'wasm-unsafe-eval'", "connect-src 'self'", "worker-src 'self'", "object-src 'none'", "base-uri 'self'"]) {
        if (!meta.includes(d)) problems.push(`the policy lacks ${d}`);
      }

      // No analytics or tracking code in what is shipped.
      const scan = scanDist(S.dist);
      if (scan.hits.length) problems.push(`analytics/tracking code in dist: ${scan.hits.join(', ')}`);

      if (problems.length) throw new Error(problems.join('; '));
      const byFrom = {};
      for (const r of appSeen) byFrom[r.from] = (byFrom[r.from] || 0) + 1;
      return `3 taps, ${autoCaptions} automatic captions in ${autoSeconds} s (moving fake camera), 1 photo (${JSON.stringify(photo.caption.slice(0, 30))}…); ` +
        `${appSeen.length} browser requests (${Object.entries(byFrom).map(([k, v]) => `${v} ${k}`).join(', ')}), ${serverLog.length} at the server, all GET, none with a body, all to ${origin}; ` +
        `besides the app's files only ${[...new Set(serverLog.filter((r) => model.has(r.path)).map((r) => r.path))].join(' and ')}; none of the app's reached the trap (Chromium's proxy for everything non-loopback, and the other origin); ` +
        `CSP: injected inline script, eval, inline style, cross-origin fetch and image all blocked (${directives.join(', ')}); header = <meta> + frame-ancestors on /, worker.js, sw.js, and in Trunk.toml; ` +
        `no tracker in dist (http(s) hosts named in it: ${scan.hosts.join('; ') || 'none'})${swSeen ? '' : '; NOTE: Playwright reported no service-worker requests'}` +
        (browserOwn.length ? `; NOTE: Chromium's own background connections (not the app's) reached the proxy: ${[...new Set(browserOwn.map((r) => hostOf(r.url)))].join(', ')}` : '');
    });
  }, { timeoutMs: 300000 });

  // -------------------------------------------------------------------------------------------
  scenario('model-url-other-origin', async (S) => {
    // The user types a model address on another origin: the worker's policy (connect-src 'self',
    // from worker.js's header) refuses it; the app must say so at once (no retries, no "connection
    // lost") and offer a way out.
    const trap = await startTrap();
    S.cleanups.add(trap.close);
    return withChromium(S, { webgpu: false, allowCsp: true }, async ({ page }) => {
      await page.goto(`${S.server.url}/?model=${MODEL_URL}`);
      await waitState(page, 'ready', { timeout: 90000 });
      const url = `${trap.url}/models/tiny-q8_0.gguf`;
      await page.locator('#model-url').fill(url);
      const t0 = Date.now();
      await page.locator('#download').click();
      await waitState(page, 'error', { timeout: 20000, failOn: ['ready'] });
      const ms = Date.now() - t0;
      const snap = await snapshot(page);
      const err = (await hooks(page)).fromWorker.filter((m) => m.type === 'error').pop();
      const problems = [];
      if (!err || err.code !== 'blocked') problems.push(`worker error code ${err && err.code}, expected blocked`);
      if (!snap.errorVisible || !/another site/i.test(snap.error || '')) problems.push(`#error ${JSON.stringify(snap.error)} does not say the address is another site`);
      if (await visible(page, '#retry')) problems.push('#retry is offered, though trying again cannot work');
      if (!(await visible(page, '#download')) || !(await visible(page, '#choose-file'))) problems.push('no way out (#download form, #choose-file)');
      if (trap.log.length) problems.push(`the request reached the other origin: ${JSON.stringify(trap.log)}`);
      if (problems.length) throw new Error(problems.join('; '));
      // Way out: an address beside the app.
      await page.locator('#model-url').fill(MODEL_URL.slice(1));
      await page.locator('#download').click();
      await waitState(page, 'ready', { timeout: 60000 });
      const r = await captureOnce(page);
      return `${url} → error in ${ms} ms, code blocked: ${JSON.stringify(snap.error)}; #retry hidden; nothing reached the other origin (the worker saw its own policy's securitypolicyviolation); way out: #download with ${MODEL_URL.slice(1)} → ready, caption ${JSON.stringify(r.caption.slice(0, 40))}…`;
    });
  });

  // -------------------------------------------------------------------------------------------
  scenario('bad-models', async (S) => {
    return withChromium(S, { webgpu: false }, async ({ page }) => {
      await page.goto(`${S.server.url}/?model=${MODEL_URL}`);
      await waitState(page, 'ready', { timeout: 90000 });
      const files = { ...S.fx.badModels, 'corrupt-truncated.gguf': S.fx.corruptTruncated, 'corrupt-header.gguf': S.fx.corruptHeader };
      // Each bad model by address (the download form) or as a picked file, then a different way out.
      const cases = [
        ['absurd-tensor-count.gguf', 'url', 'download'],
        ['absurd-tensor-count.gguf', 'file', 'choose-file'],
        ['absurd-kv-count.gguf', 'url', 'choose-file'],
        ['absurd-dims.gguf', 'url', 'delete'],
        ['absurd-dims.gguf', 'file', 'download'],
        ['empty.gguf', 'url', 'download'],
        ['empty.gguf', 'file', 'choose-file'],
        ['corrupt-header.gguf', 'file', 'download'],
        ['corrupt-truncated.gguf', 'file', 'choose-file'],
      ];
      const lines = [];
      let maxWasm = 0;
      for (const [name, via, out] of cases) {
        const t0 = Date.now();
        if (via === 'url') {
          await page.locator('#model-url').fill(`models/${name}`);
          await page.locator('#download').click();
        } else {
          await page.locator('#model-file').setInputFiles(files[name]);
        }
        await waitState(page, 'error', { timeout: 30000, failOn: ['ready'] });
        const ms = Date.now() - t0;
        const snap = await snapshot(page);
        const err = (await hooks(page)).fromWorker.filter((m) => m.type === 'error').pop();
        const where = `${name} (${via})`;
        if (!snap.errorVisible || !snap.error || snap.error.length < 30) throw new Error(`${where}: #error ${JSON.stringify(snap.error)} is missing, hidden or too short to say anything`);
        if (/undefined|\[object|NaN/.test(snap.error)) throw new Error(`${where}: #error is not readable: ${JSON.stringify(snap.error)}`);
        if (!err || err.code !== 'model') throw new Error(`${where}: worker error code ${err && err.code}, expected model`);
        if (await visible(page, '#retry')) throw new Error(`${where}: #retry is offered for a bad model file (it would load the same file again)`);
        for (const b of ['#choose-file', '#delete-model', '#download']) {
          if (!(await visible(page, b))) throw new Error(`${where}: ${b} is not visible`);
        }
        if (ms > 15000) throw new Error(`${where}: the error took ${ms} ms`);
        maxWasm = Math.max(maxWasm, (await workerStats(page, 15000)).wasmMemoryBytes);
        // The way out, then a caption.
        if (out === 'download') {
          await page.locator('#model-url').fill(MODEL_URL.slice(1));
          await page.locator('#download').click();
        } else if (out === 'choose-file') {
          const [chooser] = await Promise.all([page.waitForEvent('filechooser', { timeout: 10000 }), page.locator('#choose-file').click()]);
          await chooser.setFiles(S.fx.model);
        } else {
          await page.locator('#delete-model').click();
          await waitState(page, 'setup', { timeout: 30000, failOn: [] });
          await page.locator('#model-url').fill(MODEL_URL.slice(1));
          await page.locator('#download').click();
        }
        await waitState(page, 'ready', { timeout: 60000 });
        const r = await captureOnce(page);
        if (!r.caption.trim()) throw new Error(`${where}: empty caption after the way out`);
        lines.push(`${where}: ${ms} ms → ${JSON.stringify(snap.error.replace(/^This model can't be used\. /, '').slice(0, 90))}; out by ${out} → caption`);
      }
      return `${lines.join('; ')}; wasm memory at most ${(maxWasm / 1048576).toFixed(1)} MiB after the bad models`;
    });
  }, { timeoutMs: 240000 });

  // -------------------------------------------------------------------------------------------
  scenario('bad-photos', async (S) => {
    return withChromium(S, { webgpu: false, camera: 'none', initScript: DENY_CAMERA }, async ({ page }) => {
      await page.goto(`${S.server.url}/?model=${MODEL_URL}`);
      await waitState(page, 'ready', { timeout: 90000 });
      const photo = page.locator('#photo');
      const lines = [];
      const bad = ['empty.png', 'not-an-image.txt', 'truncated.png', 'zero-size.png', 'bomb-100000x100000.png'];
      for (const name of bad) {
        const sentBefore = (await hooks(page)).toWorker.filter((m) => m.type === 'caption').length;
        const t0 = Date.now();
        await photo.setInputFiles(S.fx.photos[name]);
        try {
          await page.locator('#image-error').waitFor({ state: 'visible', timeout: 10000 });
        } catch {
          throw new Error(`${name}: no visible #image-error within 10 s; ${JSON.stringify(await snapshot(page))}`);
        }
        const ms = Date.now() - t0;
        const text = (await page.locator('#image-error').textContent()).trim();
        const role = await page.locator('#image-error').getAttribute('role');
        const state = await page.evaluate(() => document.body.dataset.state);
        const sent = (await hooks(page)).toWorker.filter((m) => m.type === 'caption').length - sentBefore;
        if (text.length < 20) throw new Error(`${name}: #image-error says only ${JSON.stringify(text)}`);
        if (role !== 'alert') throw new Error(`${name}: #image-error has role ${role}, expected alert`);
        if (state !== 'ready') throw new Error(`${name}: state ${state} after a bad photo, expected ready`);
        if (sent) throw new Error(`${name}: ${sent} caption request(s) went to the worker`);
        // Still responsive, and a good photo still works (and clears the message).
        const r = await captureOnce(page, { trigger: () => photo.setInputFiles(S.fx.photoPng) });
        if (!r.caption.trim()) throw new Error(`${name}: no caption for the good photo after it`);
        if (await visible(page, '#image-error')) throw new Error(`${name}: #image-error still shown after a good caption`);
        lines.push(`${name}: ${ms} ms → ${JSON.stringify(text)}; then the good photo captions`);
      }
      // 1x1 captions normally.
      const one = await captureOnce(page, { trigger: () => photo.setInputFiles(S.fx.photos['one-pixel.png']) });
      const sent = (await hooks(page)).toWorker.filter((m) => m.type === 'caption').pop();
      if (!one.caption.trim()) throw new Error('one-pixel.png: empty caption');
      if (!sent || sent.width !== 1 || sent.height !== 1) throw new Error(`one-pixel.png: sent ${sent && sent.width}x${sent && sent.height}, expected 1x1`);
      lines.push(`one-pixel.png: 1x1 frame captions ${JSON.stringify(one.caption.slice(0, 40))}… ${await cliNote(S, page, one, 'cpu')}`);
      return lines.join('; ');
    });
  }, { timeoutMs: 200000 });
}
