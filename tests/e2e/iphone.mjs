// What Safari on iOS does differently (docs/web-app.md, "On iPhone"), tested in Chromium:
//   ios-model-picker-and-install-first  iOS user agent: no `accept` on the model picker; a Safari tab
//                                       offers Add to Home Screen before the download, with the
//                                       storage estimate; a desktop agent keeps accept=".gguf"
//   ios-camera-on-first-describe        iOS: "Ready" is announced with no camera request; the first
//                                       Describe asks for the camera and captions
//   lockdown-no-wasm                    no WebAssembly (Lockdown Mode): a plain error that names the
//                                       setting, and no Try again that cannot help
//   background-suspend-webgpu           the page suspended as iOS does (script paused 40 s during the
//                                       load, then hidden and paused 90 s during the first caption):
//                                       no hung-GPU restart, the backend stays webgpu, the caption
//                                       arrives (SwiftShader: slow)
//   diagnostics-panel                   "About this device" lists the backend, model hash, storage,
//                                       wasm memory and the last caption's timings; Copy copies them
//
// Chromium's Page.setWebLifecycleState("frozen") does not freeze a page in this headless Chromium
// (measured: timers kept running, no freeze event, the page stayed visible), so suspension is made
// with the debugger: a paused page runs no timers and queues the worker's messages, and its due
// timers fire at once on resume, which is what iOS does to a backgrounded web app.
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const IPHONE_UA = 'Mozilla/5.0 (iPhone; CPU iPhone OS 26_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/26.1 Mobile/15E148 Safari/604.1';

// Counts getUserMedia calls, and lets a test hide the page (visibilitychange) as iOS does before
// it suspends a page.
const PAGE_CONTROLS = `
  (() => {
    window.__e2eCamera = { calls: 0 };
    const md = navigator.mediaDevices;
    if (md && md.getUserMedia) {
      const orig = md.getUserMedia.bind(md);
      md.getUserMedia = (c) => { window.__e2eCamera.calls++; window.__e2eCamera.firstAt = window.__e2eCamera.firstAt || performance.now(); return orig(c); };
    }
    let hidden = false;
    Object.defineProperty(Document.prototype, 'hidden', { get() { return hidden; }, configurable: true });
    Object.defineProperty(Document.prototype, 'visibilityState', { get() { return hidden ? 'hidden' : 'visible'; }, configurable: true });
    window.__e2eSetHidden = (h) => { hidden = h; document.dispatchEvent(new Event('visibilitychange')); };
    // Suspension points: the debugger stops here when the runner has the debugger on.
    window.__e2ePause = { onLoadProgress: 0, onCaptionSent: false };
    const W = window.Worker;
    window.Worker = class extends W {
      constructor(...a) {
        super(...a);
        // Registered before the app's own listener: the pause comes before the app sees the message.
        this.addEventListener('message', (e) => {
          const m = e.data;
          if (m && m.type === 'progress' && m.phase === 'load' && window.__e2ePause.onLoadProgress > 0) {
            if (--window.__e2ePause.onLoadProgress === 0) { debugger; }
          }
        });
      }
      postMessage(...a) {
        const r = super.postMessage(...a);
        const m = a[0];
        if (m && m.type === 'caption' && window.__e2ePause.onCaptionSent) {
          window.__e2ePause.onCaptionSent = false;
          // After the tap's handler returns (a paused input event would stall the test's click).
          setTimeout(() => { window.__e2eSetHidden(true); debugger; }, 0);
        }
        return r;
      }
    };
  })();`;

// A Home Screen app on iOS reports the camera permission as "prompt" at each launch (it asks
// again); Chromium's fake media UI would say "granted".
const CAMERA_PROMPT = `
  (() => {
    const q = navigator.permissions.query.bind(navigator.permissions);
    navigator.permissions.query = (d) => (d && d.name === 'camera' ? Promise.resolve({ state: 'prompt' }) : q(d));
  })();`;

export function registerIphoneScenarios({ scenario, withChromium, waitState, captureOnce, snapshot, hooks, slow, MODEL_URL }) {
  scenario('ios-model-picker-and-install-first', async (S) => {
    const desktop = await withChromium(S, { webgpu: false, camera: 'none' }, async ({ page }) => {
      await page.goto(`${S.server.url}/`);
      await waitState(page, 'setup', { timeout: 30000 });
      return page.locator('#model-file').getAttribute('accept');
    });
    if (desktop !== '.gguf') throw new Error(`desktop Chromium: #model-file accept=${JSON.stringify(desktop)}, expected ".gguf"`);
    return withChromium(S, { webgpu: false, camera: 'none', userAgent: IPHONE_UA }, async ({ page }) => {
      await page.goto(`${S.server.url}/`);
      await waitState(page, 'setup', { timeout: 30000 });
      const accept = await page.locator('#model-file').getAttribute('accept');
      if (accept !== null) throw new Error(`iOS: #model-file has accept=${JSON.stringify(accept)}; iOS greys out .gguf files then`);
      const panel = page.locator('#install-first');
      await panel.waitFor({ state: 'visible', timeout: 5000 });
      if (await page.locator('#download-form').isVisible()) throw new Error('iOS Safari tab: the download form shows before the Home Screen advice was dismissed');
      const advice = (await panel.textContent()).replace(/\s+/g, ' ').trim();
      if (!/Home Screen/.test(advice) || !/separate storage/.test(advice)) throw new Error(`the advice does not say why: ${advice}`);
      await page.locator('#download-here').click();
      await page.locator('#download-form').waitFor({ state: 'visible', timeout: 5000 });
      if (await panel.isVisible()) throw new Error('the advice is still shown after "Download in this Safari tab anyway"');
      const focused = await page.evaluate(() => document.activeElement && document.activeElement.id);
      if (focused !== 'model-url') throw new Error(`focus went to #${focused}, expected #model-url`);
      const storage = page.locator('#storage-info');
      await storage.waitFor({ state: 'visible', timeout: 5000 });
      const storageText = (await storage.textContent()).trim();
      if (!/Space this app may use: about .*(MB|GB)/.test(storageText)) throw new Error(`#storage-info: ${JSON.stringify(storageText)}`);
      // The picker accepts a GGUF that iOS would otherwise grey out; the worker checks the magic.
      return `desktop accept=".gguf"; iOS: no accept, Home Screen advice first (${advice.length} chars) then the form, focus on #model-url; storage: ${JSON.stringify(storageText)}`;
    });
  });

  scenario('ios-camera-on-first-describe', (S) => withChromium(S, { webgpu: false, userAgent: IPHONE_UA, initScript: PAGE_CONTROLS + CAMERA_PROMPT }, async ({ page }) => {
    await page.goto(`${S.server.url}/?model=${MODEL_URL}&backend=cpu`);
    await waitState(page, 'ready', { timeout: 90000 });
    const status = (await page.locator('#status').textContent()).trim();
    if (!/^Ready/.test(status)) throw new Error(`#status after ready: ${JSON.stringify(status)}`);
    // Give a camera start at ready every chance to happen (it would have been synchronous with ready).
    await page.waitForFunction(() => window.__e2e.states.some((s) => s.state === 'ready'));
    const before = await page.evaluate(() => window.__e2eCamera.calls);
    if (before !== 0) throw new Error(`the camera was requested ${before} time(s) before any Describe: its permission alert would cover "Ready"`);
    await page.locator('#capture').click();
    const msg = await page.waitForFunction(() => window.__e2e.fromWorker.find((m) => m.type === 'caption' || (m.type === 'error' && m.id !== undefined)), null, { timeout: 60000 });
    const m = await msg.jsonValue();
    if (m.type !== 'caption') throw new Error(`the first Describe got ${JSON.stringify(m)}`);
    const calls = await page.evaluate(() => window.__e2eCamera.calls);
    await waitState(page, 'ready', { timeout: 30000 });
    const r = await captureOnce(page);
    return `"Ready" announced with 0 camera requests; the first Describe asked for the camera (${calls} request) and captioned; a second tap captioned too (${JSON.stringify(r.caption.slice(0, 40))}…)`;
  }));

  scenario('lockdown-no-wasm', (S) => withChromium(S, { webgpu: false, camera: 'none', initScript: 'delete window.WebAssembly;' }, async ({ page }) => {
    await page.goto(`${S.server.url}/?model=${MODEL_URL}`);
    await waitState(page, 'error', { timeout: 30000, failOn: [] });
    const snap = await snapshot(page);
    const code = await page.locator('#error').getAttribute('data-code');
    if (code !== 'no-wasm') throw new Error(`#error data-code=${code}, expected no-wasm; ${JSON.stringify(snap)}`);
    if (!/Lockdown Mode/.test(snap.error) || !/Exclude Websites|Website Settings/.test(snap.error)) throw new Error(`the message does not say how to exclude the site: ${snap.error}`);
    if (snap.buttons.includes('#retry')) throw new Error('Try again is offered, but nothing changes until the setting does');
    const workers = (await hooks(page)).toWorker.length;
    if (workers) throw new Error(`${workers} message(s) were sent to a worker that cannot run`);
    const focused = await page.evaluate(() => document.activeElement && document.activeElement.id);
    if (focused !== 'error-heading') throw new Error(`focus on #${focused}, expected #error-heading`);
    return `state error, code no-wasm, no Try again, focus on the heading: ${JSON.stringify(snap.error.slice(0, 120))}…`;
  }));

  slow('background-suspend-webgpu');
  scenario('background-suspend-webgpu', (S) => withChromium(S, { webgpu: true, initScript: PAGE_CONTROLS }, async ({ context, page }) => {
    const cdp = await context.newCDPSession(page);
    await cdp.send('Debugger.enable');
    const paused = [];
    let holdMs = 0;
    cdp.on('Debugger.paused', async () => {
      paused.push(Date.now());
      await sleep(holdMs);
      await cdp.send('Debugger.resume').catch(() => {});
    });
    // During the load: suspended at its second progress report (a tensor, or the load's last report
    // when the tiny model loads within the reports' 100 ms interval), with no visibilitychange first
    // (the gap alone must keep the 30 s load-stall watchdog from firing on return).
    holdMs = 40000;
    await page.addInitScript('window.__e2ePause && (window.__e2ePause.onLoadProgress = 2);');
    await page.goto(`${S.server.url}/?model=${MODEL_URL}`);
    await waitState(page, 'ready', { timeout: 180000 });
    if (paused.length !== 1) throw new Error(`the page was suspended ${paused.length} times during the load, expected once (no 'load' progress?)`);
    let snap = await snapshot(page);
    if (snap.backend !== 'webgpu') throw new Error(`after a 40 s suspension during the load #backend is ${snap.backend}, expected webgpu (a watchdog fired on return?)`);
    const restarts = (await hooks(page)).toWorker.filter((m) => m.type === 'load').length;
    if (restarts !== 1) throw new Error(`${restarts} load requests: the load was restarted`);
    // During the first caption (SwiftShader takes about 90 s with shader compilation): hidden, then
    // suspended 90 s, then visible. The 45 s hung-GPU watchdog must count neither.
    holdMs = 90000;
    await page.evaluate(() => { window.__e2ePause.onCaptionSent = true; });
    await page.waitForFunction(() => window.__e2e.states.some((s) => s.state === 'ready'));
    await page.waitForFunction(() => { const v = document.querySelector('#preview'); return v && v.videoWidth > 0; }, null, { timeout: 30000 });
    // Clicked from a page timer: the test's own click would wait on the page the debugger pauses.
    await page.evaluate(() => { setTimeout(() => document.querySelector('#capture').click(), 0); });
    const msg = await page.waitForFunction(() => window.__e2e.fromWorker.find((m) => (m.type === 'caption' || (m.type === 'error' && m.id !== undefined))), null, { timeout: 300000, polling: 500 });
    const m = await msg.jsonValue();
    await page.evaluate(() => window.__e2eSetHidden(false));
    if (m.type !== 'caption') throw new Error(`the caption in flight while hidden ended in ${JSON.stringify(m)}`);
    await waitState(page, 'ready', { timeout: 30000 });
    snap = await snapshot(page);
    const loads = (await hooks(page)).toWorker.filter((x) => x.type === 'load').length;
    if (snap.backend !== 'webgpu' || loads !== 1) throw new Error(`after the suspended caption: #backend ${snap.backend}, ${loads} load requests (expected webgpu, 1: no restart)`);
    if (paused.length !== 2) throw new Error(`suspended ${paused.length} times, expected 2`);
    return `suspended 40 s at the 2nd progress report of the load and 90 s (hidden) during the first caption: no restart, #backend webgpu, caption ${JSON.stringify(m.caption.slice(0, 40))}… in ${Math.round(m.ms)} ms of engine time`;
  }), { timeoutMs: 600000 });

  scenario('diagnostics-panel', (S) => withChromium(S, { webgpu: false, flags: [] }, async ({ context, page }) => {
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: S.server.url });
    await page.goto(`${S.server.url}/?model=${MODEL_URL}&backend=cpu`);
    await waitState(page, 'ready', { timeout: 90000 });
    await captureOnce(page);
    await page.locator('#show-diagnostics').click();
    const list = page.locator('#diagnostics');
    await list.waitFor({ state: 'visible', timeout: 10000 });
    const items = await list.locator('li').allTextContents();
    const text = items.join('\n');
    const want = [
      /^App build: [0-9a-f]{16}$/m, /^Backend in use: CPU/m, /^Model: tiny-q8_0\.gguf, 2\.1 MB, SHA-256 ([0-9a-f]{64}|not checked)$/m,
      /^Storage: .* used of .* allowed$/m, /^Wasm memory: \d+ MiB$/m, /^Last caption: \d+ ms on cpu \(preprocess \d+ ms, vision \d+ ms, decode \d+ ms\)$/m,
      /^Engine adapter: cpu/m, /^Camera: on, \d+×\d+$/m,
    ];
    const missing = want.filter((re) => !re.test(text));
    if (missing.length) throw new Error(`missing ${missing.join(', ')} in:\n${text}`);
    await page.locator('#copy-diagnostics').click();
    await page.waitForFunction(() => /copied/.test(document.querySelector('#status').textContent), null, { timeout: 5000 });
    const copied = await page.evaluate(() => navigator.clipboard.readText());
    for (const line of items) if (!copied.includes(line)) throw new Error(`the copied text lacks ${JSON.stringify(line)}`);
    return `${items.length} lines (${items.filter((l) => /^(Backend in use|Model|Last caption|Storage):/.test(l)).join('; ')}); Copy put them on the clipboard`;
  }));
}
