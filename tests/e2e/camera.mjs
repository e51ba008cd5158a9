// Chromium scenarios about the camera picture and speech failures (registered by run.mjs, which
// passes its helpers). iOS mutes the capture track in the background (WebKit PR 32807) and the app
// must never describe a black or frozen picture; Chromium's fake camera cannot mute, so the page's
// getUserMedia is wrapped (init scripts below) to give a track the test mutes, or a canvas stream
// the test paints.
//   camera-muted-no-caption        muted: #camera-message says paused, Describe sends nothing;
//                                  unmuted: captions again
//   camera-muted-restarts-on-show  still muted when the page is shown again: the camera restarts
//   camera-black-frame             a black picture: Describe says so (#image-error), sends nothing;
//                                  a dark room with a lamp is still described
//   camera-frozen-frame            no new frame for 2 s: Describe says so, sends nothing; the camera
//                                  restarts by itself and captions again
//   speech-fails-caption-announced speech errors (headless Chromium has no voices): retried once,
//                                  then the caption goes to the #speech-fallback live region

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The real (fake-device) camera, with a track the test can mute: window.__cam.mute()/unmute() set
// track.muted and fire the track's mute/unmute events, as WebKit does in the background.
const MUTABLE_CAMERA = `
  (() => {
    if (!window.MediaDevices) return;
    const real = MediaDevices.prototype.getUserMedia;
    const C = (window.__cam = { calls: 0, tracks: [] });
    MediaDevices.prototype.getUserMedia = async function (constraints) {
      const stream = await real.call(this, constraints);
      C.calls++;
      const track = stream.getVideoTracks()[0];
      let muted = false;
      Object.defineProperty(track, 'muted', { configurable: true, get: () => muted });
      track.__setMuted = (m) => {
        if (muted === m) return;
        muted = m;
        track.dispatchEvent(new Event(m ? 'mute' : 'unmute'));
      };
      C.tracks.push(track);
      return stream;
    };
    C.current = () => C.tracks[C.tracks.length - 1];
    C.mute = () => C.current().__setMuted(true);
    C.unmute = () => C.current().__setMuted(false);
  })();`;

// A camera made of canvas streams, 640×480 at up to 20 frames a second, painted as window.__cam.paint
// says: 'black', 'dark-room' (almost black, a lamp, a dimly lit wall) or 'scene' (colour blocks).
// window.__cam.freeze() stops painting the current canvas (no new frames: frozen); canvases of
// later getUserMedia calls paint again.
const CANVAS_CAMERA = (paint) => `
  (() => {
    if (!window.MediaDevices) return;
    const C = (window.__cam = { calls: 0, paint: ${JSON.stringify(paint)}, canvases: [] });
    const draw = (g) => {
      if (C.paint === 'black') {
        g.fillStyle = '#000';
        g.fillRect(0, 0, 640, 480);
      } else if (C.paint === 'dark-room') {
        g.fillStyle = 'rgb(4, 4, 6)';
        g.fillRect(0, 0, 640, 480);
        g.fillStyle = 'rgb(40, 34, 28)';   // a wall the lamp lights a little
        g.fillRect(380, 60, 220, 200);
        g.fillStyle = 'rgb(255, 230, 160)'; // the lamp
        g.beginPath();
        g.arc(500, 100, 30, 0, Math.PI * 2);
        g.fill();
      } else {
        const colours = ['#c33', '#3a3', '#33c', '#cc3', '#3cc', '#c3c'];
        for (let i = 0; i < 6; i++) {
          g.fillStyle = colours[i];
          g.fillRect((i % 3) * 213, Math.floor(i / 3) * 240, 213, 240);
        }
      }
    };
    MediaDevices.prototype.getUserMedia = async function () {
      C.calls++;
      const canvas = document.createElement('canvas');
      canvas.width = 640;
      canvas.height = 480;
      const g = canvas.getContext('2d');
      const entry = { frozen: false };
      C.canvases.push(entry);
      draw(g);
      setInterval(() => { if (!entry.frozen) draw(g); }, 50);
      return canvas.captureStream(20);
    };
    C.freeze = () => { C.canvases[C.canvases.length - 1].frozen = true; };
  })();`;

export function registerCameraScenarios(h) {
  const { scenario, withChromium, waitState, captureOnce, hooks, MODEL_URL } = h;

  const captionsSent = async (page) => (await hooks(page)).toWorker.filter((m) => m.type === 'caption').length;

  /** Waits until the preview shows a live camera (what captureOnce also waits for). */
  const waitLive = (page, timeout = 30000) =>
    page.waitForFunction(() => {
      const v = document.querySelector('#preview');
      return !!v && v.videoWidth > 0 && !v.hidden && document.querySelector('#camera-message').hidden;
    }, null, { timeout });

  /** The text of a visible element, or null. */
  const visibleText = (page, sel) =>
    page.evaluate((s) => {
      const el = document.querySelector(s);
      if (!el || el.hidden || !(el.offsetWidth || el.offsetHeight || el.getClientRects().length)) return null;
      return el.textContent.trim();
    }, sel);

  /** Waits until a visible element's text matches re; returns the text. */
  async function waitText(page, sel, re, timeout = 10000) {
    const t0 = Date.now();
    for (;;) {
      const text = await visibleText(page, sel);
      if (text && re.test(text)) return text;
      if (Date.now() - t0 > timeout) throw new Error(`${sel} never said ${re} (it shows ${JSON.stringify(text)})`);
      await sleep(50);
    }
  }

  /**
   * Clicks Describe and checks that no caption was sent. The click handler decides at once (no
   * model work before the frame is checked), so the count is taken after its message appeared
   * and once more after a settle time: a late send would still be seen.
   */
  async function describeSendsNothing(page, messageSel, re) {
    const before = await captionsSent(page);
    await page.locator('#capture').click();
    const text = messageSel ? await waitText(page, messageSel, re) : null;
    await sleep(500);
    const after = await captionsSent(page);
    if (after !== before) throw new Error(`Describe sent ${after - before} caption message(s) to the worker${text ? ` although ${messageSel} says ${JSON.stringify(text)}` : ''}`);
    return text;
  }

  // -------------------------------------------------------------------------------------------
  scenario('camera-muted-no-caption', (S) => withChromium(S, { webgpu: false, initScript: MUTABLE_CAMERA }, async ({ page }) => {
    await page.goto(`${S.server.url}/?model=${MODEL_URL}`);
    await waitState(page, 'ready', { timeout: 90000 });
    const first = await captureOnce(page);  // the camera is on and captions
    await page.evaluate(() => window.__cam.mute());
    const paused = await waitText(page, '#camera-message', /paused/i);
    const previewHidden = await page.evaluate(() => document.querySelector('#preview').hidden);
    if (!previewHidden) throw new Error('#preview is still shown while the camera is muted');
    await describeSendsNothing(page, null);
    const said = (await visibleText(page, '#image-error')) || (await page.evaluate(() => document.querySelector('#status').textContent.trim()));
    await page.evaluate(() => window.__cam.unmute());
    await waitLive(page);
    const again = await captureOnce(page);
    const calls = await page.evaluate(() => window.__cam.calls);
    return `muted: #camera-message ${JSON.stringify(paused)}, preview hidden, Describe sent nothing (then: ${JSON.stringify(said)}); unmuted: captions again ${JSON.stringify(again.caption)} (before: ${JSON.stringify(first.caption)}); getUserMedia calls ${calls}`;
  }));

  scenario('camera-muted-restarts-on-show', (S) => withChromium(S, { webgpu: false, initScript: MUTABLE_CAMERA }, async ({ page }) => {
    await page.goto(`${S.server.url}/?model=${MODEL_URL}`);
    await waitState(page, 'ready', { timeout: 90000 });
    await captureOnce(page);
    // The page goes to the background; the system mutes the camera.
    await page.evaluate(() => {
      let hidden = false;
      Object.defineProperty(document, 'hidden', { configurable: true, get: () => hidden });
      Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => (hidden ? 'hidden' : 'visible') });
      window.__setHidden = (h) => { hidden = h; document.dispatchEvent(new Event('visibilitychange')); };
      window.__setHidden(true);
      window.__cam.mute();
    });
    await waitText(page, '#camera-message', /paused/i);
    // Back in the foreground, but the track stays muted: the app must get a new one.
    await page.evaluate(() => window.__setHidden(false));
    await waitLive(page, 20000).catch(() => { throw new Error('the camera did not come back after the page was shown again with the track still muted'); });
    const cam = await page.evaluate(() => ({ calls: window.__cam.calls, oldTrack: window.__cam.tracks[0].readyState }));
    if (cam.calls < 2) throw new Error(`getUserMedia was called ${cam.calls} time(s): the muted camera was not restarted`);
    if (cam.oldTrack !== 'ended') throw new Error(`the old, muted track is still ${cam.oldTrack}: it should have been stopped`);
    const r = await captureOnce(page);
    return `shown again with the track muted: restarted (getUserMedia ×${cam.calls}, old track ${cam.oldTrack}); caption ${JSON.stringify(r.caption)}`;
  }));

  scenario('camera-black-frame', (S) => withChromium(S, { webgpu: false, camera: 'none', initScript: CANVAS_CAMERA('black') }, async ({ page }) => {
    await page.goto(`${S.server.url}/?model=${MODEL_URL}`);
    await waitState(page, 'ready', { timeout: 90000 });
    await waitLive(page);
    const said = await describeSendsNothing(page, '#image-error', /black/i);
    // A dark room with a lamp is not black: it is described.
    await page.evaluate(() => { window.__cam.paint = 'dark-room'; });
    await page.waitForFunction(() => {
      const v = document.querySelector('#preview');
      const c = document.createElement('canvas');
      c.width = 640;
      c.height = 480;
      const g = c.getContext('2d');
      g.drawImage(v, 0, 0, 640, 480);
      return g.getImageData(500, 100, 1, 1).data[0] > 200;  // the lamp is on screen
    }, null, { timeout: 10000 });
    const r = await captureOnce(page);
    const errorAfter = await visibleText(page, '#image-error');
    if (errorAfter) throw new Error(`#image-error still shows ${JSON.stringify(errorAfter)} after a described frame`);
    return `black: #image-error ${JSON.stringify(said)}, no caption sent; dark room with a lamp: caption ${JSON.stringify(r.caption)}`;
  }));

  scenario('camera-frozen-frame', (S) => withChromium(S, { webgpu: false, camera: 'none', initScript: CANVAS_CAMERA('scene') }, async ({ page }) => {
    await page.goto(`${S.server.url}/?model=${MODEL_URL}`);
    await waitState(page, 'ready', { timeout: 90000 });
    await captureOnce(page);
    await page.evaluate(() => window.__cam.freeze());
    await sleep(2500);  // over FROZEN_MS (1.5 s) with no new frame
    const said = await describeSendsNothing(page, '#image-error', /stopped updating/i);
    // The camera restarts by itself (a new getUserMedia, whose canvas paints).
    await page.waitForFunction(() => window.__cam.calls >= 2, null, { timeout: 15000 }).catch(() => {
      throw new Error('the frozen camera was not restarted');
    });
    await waitLive(page);
    const r = await captureOnce(page);
    return `frozen: #image-error ${JSON.stringify(said)}, no caption sent; restarted by itself (getUserMedia ×${await page.evaluate(() => window.__cam.calls)}); caption ${JSON.stringify(r.caption)}`;
  }));

  scenario('speech-fails-caption-announced', (S) => withChromium(S, { webgpu: false }, async ({ page }) => {
    await page.goto(`${S.server.url}/?model=${MODEL_URL}`);
    await waitState(page, 'ready', { timeout: 90000 });
    // Headless Chromium has no voices: every utterance ends with error "synthesis-failed".
    const r = await captureOnce(page);
    await page.waitForFunction((text) => {
      const el = document.querySelector('#speech-fallback');
      return !!el && el.textContent === text;
    }, r.caption, { timeout: 10000 }).catch(async () => {
      const now = await page.evaluate(() => ({ fallback: document.querySelector('#speech-fallback')?.textContent ?? null, spoken: window.__e2e.spoken.map((s) => s.text) }));
      throw new Error(`#speech-fallback never held the caption ${JSON.stringify(r.caption)}: ${JSON.stringify(now)}`);
    });
    const info = await page.evaluate((text) => {
      const el = document.querySelector('#speech-fallback');
      return {
        live: el.getAttribute('aria-live'),
        spoken: window.__e2e.spoken.filter((s) => s.text === text).length,
        caption: document.querySelector('#caption').textContent,
      };
    }, r.caption);
    if (info.live !== 'polite') throw new Error(`#speech-fallback has aria-live=${JSON.stringify(info.live)}, expected "polite"`);
    if (info.spoken !== 2) throw new Error(`speak() was called ${info.spoken} time(s) with the caption: expected 2 (the first try and one retry)`);
    if (info.caption !== r.caption) throw new Error(`#caption shows ${JSON.stringify(info.caption)}, not exactly the caption`);
    return `speak() ×2 (one retry), then #speech-fallback (aria-live polite) holds ${JSON.stringify(r.caption)}; #caption unchanged`;
  }));
}
