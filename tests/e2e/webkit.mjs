// WebKitGTK (Safari's engine: WebKit + JavaScriptCore) scenarios, over W3C WebDriver with plain fetch.
// CPU path only: Debian's WebKitGTK has no WebGPU. Needs `apt-get install -y webkit2gtk-driver xvfb`.
// Run through run.mjs (scenario names webkit-*), or alone:
//
//   node tests/e2e/webkit.mjs --dist DIR --cli target/release/edgecap
//
// What WebKitGTK under WebDriver can and cannot do (found while writing this; see the report):
// - MiniBrowser --automation runs an *ephemeral* (private) website data session. With the shipped
//   feature defaults `navigator.storage` is undefined (features StorageAPI and FileSystem are off in
//   the GTK port); with --features=+StorageAPI,+FileSystem `navigator.storage.getDirectory()` exists,
//   but in the ephemeral session getFileHandle() rejects with "UnknownError" (as OPFS does in Safari's
//   private browsing). So the model cannot be stored in OPFS here: the app must still load it (e.g.
//   in memory) for these scenarios to pass. The Cache API and IndexedDB work.
// - No WebGPU (navigator.gpu absent). getUserMedia gives the mock camera when MiniBrowser gets
//   --enable-mock-capture-devices=true and the MockCaptureDevices feature. speechSynthesis has Flite
//   voices and speak() works.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Session, startWebKitDriver, MINIBROWSER } from './wd.mjs';
import { cliCaption, compareCaptions } from './cli.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const HERE = path.dirname(fileURLToPath(import.meta.url));

function which(bin) {
  for (const d of (process.env.PATH || '').split(':')) {
    if (d && fs.existsSync(path.join(d, bin))) return path.join(d, bin);
  }
  return null;
}

function capabilities(features) {
  return {
    alwaysMatch: {
      'webkitgtk:browserOptions': {
        binary: MINIBROWSER,
        args: ['--automation', '--enable-mock-capture-devices=true', `--features=${features.join(',')}`],
      },
    },
  };
}

const STATE = 'return document.body ? document.body.dataset.state : null';
const SNAPSHOT = `
  const q = (s) => document.querySelector(s);
  const t = (s) => (q(s) ? q(s).textContent.trim() : null);
  const E = window.__e2e;
  return { state: document.body && document.body.dataset.state, backend: t('#backend'), caption: t('#caption'),
           error: t('#error'), imageError: q('#image-error') && !q('#image-error').hidden ? t('#image-error') : null, progress: q('#progress') ? q('#progress').getAttribute('aria-valuetext') : null,
           spoken: E ? E.spoken.map((s) => s.text) : null, hookErrors: E ? E.errors : null,
           storage: typeof navigator.storage, gpu: typeof navigator.gpu };`;

async function webkitRun(S, { features, label }) {
  for (const [bin, pkg] of [['WebKitWebDriver', 'webkit2gtk-driver'], ['Xvfb', 'xvfb']]) {
    if (!which(bin)) throw new Error(`${bin} is not installed (apt-get install -y ${pkg})`);
  }
  if (!fs.existsSync(MINIBROWSER)) throw new Error(`${MINIBROWSER} is missing (apt-get install -y webkit2gtk-driver)`);
  const logFile = path.join(S.artifacts, `${S.current}-webkit.log`);
  const drv = await startWebKitDriver({ logFile });
  S.cleanups.add(drv.stop);
  let session;
  S.cleanups.add(async () => session && (await session.delete()));
  session = await Session.create(drv.base, capabilities(features));
  const s = session;
  const fail = async (msg) => {
    let snap = null;
    try {
      snap = await s.exec(SNAPSHOT);
    } catch {}
    try {
      const png = await s.screenshot();
      fs.writeFileSync(path.join(S.artifacts, `${S.current}.png`), Buffer.from(png, 'base64'));
    } catch {}
    const e = new Error(`${msg}; page ${JSON.stringify(snap)}; browser log ${logFile}`);
    throw e;
  };

  const url = `${S.server.url}/?model=${S.modelUrl}&backend=cpu`;
  await s.goto(url);
  // Hooks after load: speechSynthesis.speak (prototype), state/caption/progress recording, taps.
  await s.exec(S.hooksSource);
  const t0 = Date.now();
  let st;
  for (;;) {
    st = await s.exec(STATE);
    if (st === 'ready') break;
    if (st === 'error') await fail(`state 'error' while loading the model`);
    if (Date.now() - t0 > 120000) await fail(`not ready after 120 s (state ${st})`);
    await sleep(200);
  }
  const backend = await s.exec(`const b = document.querySelector('#backend'); return b ? (b.tagName === 'SELECT' || b.tagName === 'INPUT' ? b.value : b.textContent.trim()) : null`);
  if (backend !== 'cpu') await fail(`#backend is ${JSON.stringify(backend)}, expected cpu (no WebGPU in WebKitGTK)`);

  const btn = await s.find('#capture');
  // Wait until #capture is enabled and the camera preview shows frames (else #capture opens the
  // photo picker, a native dialog here).
  const t1 = Date.now();
  while (
    await s.exec(`const b = document.querySelector('#capture'); const v = document.querySelector('#preview') || document.querySelector('video');
      return !b || b.disabled || b.getAttribute('aria-disabled') === 'true' || !v || !(v.videoWidth > 0) || v.hidden`)
  ) {
    if (Date.now() - t1 > 30000) await fail('#capture disabled or no camera preview after 30 s');
    await sleep(200);
  }
  await s.click(btn);
  const t2 = Date.now();
  let caption;
  for (;;) {
    // Done when the page went captioning → ready after the tap (the hooks' state record), not when
    // the text changed or some seconds passed: the same caption twice would not change the text.
    const r = await s.exec(`const E = window.__e2e; const tap = E.taps[E.taps.length - 1];
      const i = tap === undefined ? -1 : E.states.findIndex((x) => x.t >= tap && x.state === 'captioning');
      return { state: document.body.dataset.state, caption: (document.querySelector("#caption") || {}).textContent || "",
               done: i >= 0 && E.states.slice(i + 1).some((x) => x.state === 'ready') };`);
    if (r.state === 'error') await fail('state error after #capture');
    if (r.state === 'ready' && r.done && r.caption.trim()) {
      caption = r.caption.trim();
      break;
    }
    if (Date.now() - t2 > 120000) await fail('no caption 120 s after #capture');
    await sleep(100);
  }
  const timing = await s.exec(`const E = window.__e2e; const tap = E.taps[E.taps.length - 1]; const c = E.captions.find((x) => x.t >= tap && x.text && x.text.trim() && x.text.trim() === arguments[0]); return { tap, shown: c ? c.t : null };`, caption);
  const tapMs = timing.tap != null && timing.shown != null ? timing.shown - timing.tap : Date.now() - t2;
  S.figures.webkit = { tapMs };

  // speechSynthesis.speak called with the caption (Flite voices exist here, so it may really speak).
  const t3 = Date.now();
  let spoken;
  for (;;) {
    spoken = await s.exec('return window.__e2e.spoken.map((x) => x.text)');
    if (spoken.map((x) => (x || '').trim()).includes(caption)) break;
    if (Date.now() - t3 > 30000) await fail(`speechSynthesis.speak not called with ${JSON.stringify(caption)} (calls ${JSON.stringify(spoken)})`);
    await sleep(100);
  }

  // Same frame on the CLI (cpu), when the page exposes window.edgecap.lastFrame.
  let cmp = 'window.edgecap.lastFrame missing: no CLI comparison';
  const lf = await s.exec(`const f = window.edgecap && window.edgecap.lastFrame; if (!f || !f.rgba) return null;
    const px = new Uint8Array(f.rgba.buffer || f.rgba, f.rgba.byteOffset || 0, f.rgba.byteLength || f.rgba.length);
    return { width: f.width, height: f.height, b64: window.__e2e.b64(px) };`);
  if (lf) {
    const frame = { width: lf.width, height: lf.height, rgba: Buffer.from(lf.b64, 'base64') };
    const ref = await cliCaption({ cli: S.cli, model: S.fx.model, frame, backend: 'cpu', workDir: path.join(S.tmp, 'frames') });
    // Reported, not required here (capture-cpu checks CLI equality on Chromium).
    const diff = compareCaptions({ caption }, ref);
    cmp = diff
      ? `(NOTE: ≠ CLI cpu on the ${frame.width}x${frame.height} mock-camera frame: ${diff.slice(0, 400)}; frame ${ref.png})`
      : `= CLI cpu on the ${frame.width}x${frame.height} mock-camera frame`;
  }
  const env = await s.exec('return { storage: typeof navigator.storage, opfs: !!(navigator.storage && navigator.storage.getDirectory), gpu: typeof navigator.gpu, ua: navigator.userAgent }');
  // The app's Content-Security-Policy holds in WebKit too (camera, worker, wasm): no violation
  // since the hooks were installed (the ones during the first load are not seen from here).
  const csp = await s.exec('return window.__e2e.csp');
  if (csp.length) await fail(`Content-Security-Policy violation(s) in WebKitGTK: ${JSON.stringify(csp.slice(0, 4))}`);
  await s.delete();
  session = null;
  return `${label}: ready on cpu; #capture → ${JSON.stringify(caption)} ${cmp}; speak() called with it; tap→caption ${tapMs.toFixed(0)} ms; navigator.storage ${env.storage}, OPFS ${env.opfs ? 'present' : 'absent'}, navigator.gpu ${env.gpu}; no CSP violation`;
}

// The page's state machine (www/js/state.js) in WebKit, on the paths that need neither OPFS nor
// WebGPU: first run (setup) → download from the form → ready → Describe → delete → setup, and a
// damaged model → error with only the ways out that can help. The transitions the app took are
// read from its Session (window.edgecap.session.history), not guessed from the DOM.
async function webkitStatePaths(S) {
  const drv = await startWebKitDriver({ logFile: path.join(S.artifacts, `${S.current}-webkit.log`) });
  S.cleanups.add(drv.stop);
  const s = await Session.create(drv.base, capabilities(['+MockCaptureDevices']));
  S.cleanups.add(() => s.delete());
  const state = (want, timeoutMs = 120000) => s.waitFor(STATE, (v) => v === want || (v === 'error' && want !== 'error'), { timeoutMs, what: `state ${want}` })
    .then(async (v) => { if (v !== want) throw new Error(`state ${v} while waiting for ${want}: ${JSON.stringify(await s.exec(SNAPSHOT))}`); });
  const history = () => s.exec('return window.edgecap.session.history.map((h) => h.join(" "))');

  await s.goto(`${S.server.url}/?backend=cpu`);
  // setup is also the page's state before its script runs: wait for the app's own word that
  // nothing is stored (a click before that would submit the form natively and reload the page).
  await s.waitFor('return window.edgecap ? window.edgecap.session.history.map((h) => h[1]) : []', (h) => h.includes('nothing-stored'), { timeoutMs: 30000, what: 'the start-up status' });
  await s.exec('document.querySelector("#model-url").value = arguments[0];', S.modelUrl);
  await s.click(await s.find('#download'));
  await state('ready');
  await s.waitFor(`const v = document.querySelector('#preview'); return !!v && v.videoWidth > 0 && !v.hidden;`, Boolean, { timeoutMs: 30000, what: 'the camera preview' });
  const before = await s.exec('return window.edgecap.session.captionSeq');
  await s.click(await s.find('#capture'));
  await s.waitFor('return window.edgecap.session.lastResult && window.edgecap.session.captionSeq', (v) => v > before, { timeoutMs: 120000, what: 'a caption' });
  await state('ready');
  await s.click(await s.find('#remove-model'));
  await s.click(await s.find('#confirm-delete'));
  await state('setup');
  const first = await history();
  const want = ['setup nothing-stored setup', 'setup load loading', 'loading ready ready', 'ready caption captioning', 'captioning captioned ready', 'ready deleted setup'];
  if (JSON.stringify(first) !== JSON.stringify(want)) throw new Error(`transitions ${JSON.stringify(first)}, expected ${JSON.stringify(want)}`);

  await s.goto(`${S.server.url}/?model=/models/corrupt-header.gguf&backend=cpu`);
  await state('error');
  const err = await s.exec(`const vis = (q) => { const e = document.querySelector(q); return !!e && !e.hidden && !!(e.offsetWidth || e.offsetHeight); };
    return { code: document.querySelector('#error').dataset.code, retry: vis('#retry'), chooseFile: vis('#choose-file'), focus: document.activeElement && document.activeElement.id,
             history: window.edgecap.session.history.map((h) => h.join(' ')) };`);
  if (err.code !== 'model' || err.retry || !err.chooseFile || err.focus !== 'error-heading') throw new Error(`damaged model: ${JSON.stringify(err)} (want code model, no Try again, Use a model file, focus on the heading)`);
  if (err.history.at(-1) !== 'loading fail error') throw new Error(`damaged model: transitions ${JSON.stringify(err.history)}`);
  await s.delete();
  return `WebKitGTK: ${first.join(' → ')}; damaged model: ${err.history.join(' → ')}, code model, only "Use a model file" and delete offered, focus on the heading`;
}

// Safari's engine on a host that sends COOP/COEP: the page and the model worker are cross-origin
// isolated. Where the engine can hand a shared wasm memory to a worker, the worker runs the
// threaded CPU build and its caption has the same token ids as the single-threaded build's on the
// same picture; where it cannot (Debian's WebKitGTK: no SharedArrayBuffer, "The object can not be
// cloned"), the threaded start fails, the worker says why and captions on one thread, the same
// ids. The picture is a fixed gradient posted to the worker directly (the mock camera's moves).
async function webkitThreads(S) {
  const { start } = await import('./server.mjs');
  const server = await start({ dist: S.dist, models: S.fx.modelsDir, coi: true });
  S.cleanups.add(() => server.close());
  const drv = await startWebKitDriver({ logFile: path.join(S.artifacts, `${S.current}-webkit.log`) });
  S.cleanups.add(drv.stop);
  const s = await Session.create(drv.base, capabilities(['+MockCaptureDevices']));
  S.cleanups.add(() => s.delete());
  // Captions a 96x64 gradient through the page's worker; answers {diagnostics, tokenIds, adapter}.
  const CAPTION = `const done = arguments[arguments.length - 1];
    const w = window.edgecap.worker;
    const ask = (msg, type) => new Promise((resolve) => {
      const on = (e) => { if (e.data && (e.data.type === type || e.data.type === 'error')) { w.removeEventListener('message', on); resolve(e.data); } };
      w.addEventListener('message', on);
      w.postMessage(msg);
    });
    (async () => {
      const width = 96, height = 64, px = new Uint8Array(width * height * 4);
      for (let i = 0; i < width * height; i++) { px[4 * i] = (i * 7) % 256; px[4 * i + 1] = (i * 13) % 256; px[4 * i + 2] = (i * 3) % 256; px[4 * i + 3] = 255; }
      const c = await ask({ type: 'caption', id: 9001, pixels: px.buffer, width, height }, 'caption');
      const d = await ask({ type: 'diagnostics' }, 'diagnostics');
      done({ caption: c, isolatedPage: self.crossOriginIsolated === true, workerIsolated: d.crossOriginIsolated, threads: d.threads, adapter: d.engine && d.engine.adapter });
    })().catch((e) => done({ error: String(e) }));`;
  const run = async (base, label) => {
    await s.goto(`${base}/?model=${S.modelUrl}&backend=cpu`);
    await s.waitFor(STATE, (v) => v === 'ready' || v === 'error', { timeoutMs: 120000, what: `${label}: state ready` });
    if ((await s.exec(STATE)) !== 'ready') throw new Error(`${label}: state error: ${JSON.stringify(await s.exec(SNAPSHOT))}`);
    const r = await s.execAsync(CAPTION);
    if (r.error || !r.caption || r.caption.type !== 'caption') throw new Error(`${label}: ${JSON.stringify(r).slice(0, 400)}`);
    return r;
  };
  const one = await run(S.server.url, 'no COOP/COEP');
  if (one.threads.threads !== 0) throw new Error(`no COOP/COEP: threads ${JSON.stringify(one.threads)}`);
  const many = await run(server.url, 'COOP/COEP');
  if (!many.isolatedPage || !many.workerIsolated) throw new Error(`COOP/COEP sent, but the page (${many.isolatedPage}) or the worker (${many.workerIsolated}) is not cross-origin isolated`);
  // Can this engine send a shared wasm memory to another agent at all? (What wasm threads need.)
  const canShare = await s.exec(`try { new MessageChannel().port1.postMessage(new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true })); return true; } catch (e) { return String(e); }`);
  if (canShare === true && !(many.threads.threads >= 2)) throw new Error(`isolated and shared memories can be sent, but the threaded build did not run: ${JSON.stringify(many.threads)}`);
  if (canShare !== true && !(many.threads.threads === 0 && /did not start/.test(many.threads.reason))) throw new Error(`shared memories cannot be sent here (${canShare}), yet threads ${JSON.stringify(many.threads)}`);
  if (JSON.stringify(many.caption.tokenIds) !== JSON.stringify(one.caption.tokenIds)) {
    throw new Error(`token ids with COOP/COEP (${many.adapter}) ${JSON.stringify(many.caption.tokenIds)} ≠ without ${JSON.stringify(one.caption.tokenIds)}`);
  }
  await s.delete();
  const how = canShare === true ? `${many.adapter}` : `no shared memory to send (${canShare}): the worker said "${many.threads.reason}" and captioned on ${many.adapter}`;
  return `WebKitGTK with COOP/COEP: page and worker isolated; ${how}; the same ${one.caption.tokenIds.length} token ids as without (${Math.round(one.caption.ms)} ms, ${Math.round(many.caption.ms)} ms)`;
}

export const webkitScenarios = [
  {
    name: 'webkit-cpu',
    timeoutMs: 200000,
    // WebKitGTK as Debian ships it (no navigator.storage), with the mock camera.
    fn: (S) => webkitRun(S, { features: ['+MockCaptureDevices'], label: 'WebKitGTK defaults' }),
  },
  {
    name: 'webkit-cpu-opfs-features',
    timeoutMs: 200000,
    // Safari's storage features switched on (StorageAPI, OPFS, sync access handles, writable streams);
    // in the automation (ephemeral) session OPFS then exists but fails, as in Safari's private browsing.
    fn: (S) =>
      webkitRun(S, {
        features: ['+MockCaptureDevices', '+StorageAPI', '+StorageAPIEstimate', '+FileSystem', '+AccessHandle', '+FileSystemWritableStream'],
        label: 'Safari-like storage features',
      }),
  },
  {
    name: 'webkit-cpu-threads',
    timeoutMs: 240000,
    fn: webkitThreads,
  },
  {
    name: 'webkit-state-paths',
    timeoutMs: 240000,
    fn: webkitStatePaths,
  },
];

// Standalone: node tests/e2e/webkit.mjs --dist DIR --cli PATH  (runs run.mjs with --only webkit)
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { spawnSync } = await import('node:child_process');
  const r = spawnSync(process.execPath, [path.join(HERE, 'run.mjs'), ...process.argv.slice(2), '--only', 'webkit'], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}
