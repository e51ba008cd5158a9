// edgecap's page: UI, camera, speech; the model itself lives in worker.js (docs/web-app.md).
// The states and their transitions are one table in state.js; everything else the page remembers
// is in one Session object there. Nothing is read back from the DOM.
//
// Test contract (tests/e2e rely on it): body[data-state] ∈ setup|loading|ready|captioning|error;
// ?model=URL loads and stores that model on start; ?backend=cpu|webgpu|auto is passed to the
// worker; #capture, #caption (exactly the caption text), #backend ("webgpu"|"cpu"), #caption-time
// (ms of the last caption, a number), #progress, #error (data-code), #retry, #choose-file,
// #delete-model, #image-error (a photo or frame that could not be described; the app stays ready),
// #diagnostics (the "About this device" list; #show-diagnostics fills it).
// Test and benchmark settings: ?auto-interval=MS (the least time between two looks of automatic
// mode, default 3000, clamped to 200–60000), ?count-gpu-buffers=1 (the worker counts WebGPU buffers: see worker.js "stats"),
// ?lose-gpu-at-load=N (the worker's first N GPU loads lose their device: tests the GPU-loss path),
// ?submit-every=N (WebGPU: at most N dispatches per command buffer, 1–4096; 0 or absent: the
// engine's default for the adapter), ?gpu-limits=default|adapter (WebGPU device limits: the spec's
// defaults or the adapter's own, the default) and ?gpu-watchdog=MS (the hung-GPU watchdog, default
// 45000). #model-info shows the adapter and the effective settings, also as data-submit-every
// (a number, or "none") and data-gpu-limits.
//
// The only global, for tests: window.edgecap = { lastFrame, worker, session }. lastFrame is
// {width, height, rgba} with rgba a Uint8ClampedArray copy of the last frame sent to be captioned,
// so a test can caption exactly that frame with the CLI and compare the two captions; worker is
// the model worker, to post protocol messages directly (replaced if a hung GPU forces a restart);
// session is the page's Session (state.js), read-only for tests.
import { Camera, decodePhoto, MAX_PHOTO_PIXELS, MAX_PHOTO_BYTES } from './camera.js';
import { AutoMode } from './auto-mode.js';
import { Speech } from './speech.js';
import { initEarcon, unlockAudio, click } from './earcon.js';
import { StoreUI, absoluteUrl } from './store-ui.js';
import { initServiceWorker } from './sw-update.js';
import { initInstallHint } from './install-hint.js';
import { holdWakeLock } from './wake-lock.js';
import { Session, cameraInUse } from './state.js';
import { ActiveTimeout } from './active-timer.js';
import { isIos, isIosSafari, isStandalone, modelFileAccept, hasWebAssembly } from './platform.js';
import { diagnosticLines, diagnosticText, renderDiagnostics } from './diagnostics.js';
import { formatBytes } from './format.js';
import { ToWorker, FromWorker, workerUrl as workerUrlFor } from './protocol.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
// Automatic mode looks at the view this often (?auto-interval=MS for tests and benchmarks).
const AUTO_EVERY_MS = clampedInt(params.get('auto-interval'), 3000, 200, 60000);
// A WebGPU caption that hasn't answered after this much *active* time is taken to be hung (a
// wedged driver never rejects). Far above a real first caption, shader compilation included.
// Only when the app chose WebGPU itself: `?backend=webgpu` asks for it whatever it costs (tests run
// it on SwiftShader, a software GPU that takes minutes).
const GPU_WATCHDOG_MS = clampedInt(params.get('gpu-watchdog'), 45000, 1000, 3600000);
// Loading reports each tensor; this long without a word while loading for the GPU means it hangs.
const LOAD_STALL_MS = 30000;

const session = new Session({
  backendPref: ['cpu', 'webgpu', 'auto'].includes(params.get('backend')) ? params.get('backend') : 'auto',
});
const modelParam = params.get('model');
const IOS = isIos(navigator.userAgent, navigator.maxTouchPoints);

// Test settings the worker reads from its own URL (count-gpu-buffers, lose-gpu-at-load).
const workerUrl = workerUrlFor(params);
// WebGPU settings for Engine.load (see the header); 0 or nothing means the engine's own default.
const gpuSettings = {
  submitEvery: clampedInt(params.get('submit-every'), 0, 0, 4096),
  gpuLimits: ['default', 'adapter'].includes(params.get('gpu-limits')) ? params.get('gpu-limits') : undefined,
};

function clampedInt(text, fallback, min, max) {
  const n = Number.parseInt(text ?? '', 10);
  return Number.isFinite(n) ? Math.min(max, Math.max(min, n)) : fallback;
}

let worker = null;
const edgecap = { lastFrame: null, worker: null, session };
window.edgecap = edgecap;

function spawnWorker() {
  worker = new Worker(workerUrl, { type: 'module' });
  edgecap.worker = worker;
  worker.addEventListener('message', onWorkerMessage);
  worker.addEventListener('error', onWorkerError);
}

// ---------------------------------------------------------------------------------------------
// State and announcements

/** Takes the transition for `event` (state.js) and shows the new state. */
function go(event) {
  const state = session.apply(event);
  document.body.dataset.state = state;
  $('capture').setAttribute('aria-disabled', String(state !== 'ready'));
  if (!cameraInUse(state)) stopAuto();
  else scheduleAuto();
  if (state === 'setup') showStorage();
}

let announceTimer = 0;
/** Polite status line (#status). The same text again is made a change so it is read again. */
function announce(message) {
  const el = $('status');
  clearTimeout(announceTimer);
  if (el.textContent === message) {
    el.textContent = '';
    announceTimer = setTimeout(() => { el.textContent = message; }, 150);
  } else {
    el.textContent = message;
  }
}

function setBackend(backend) {
  session.backend = backend === 'webgpu' ? 'webgpu' : 'cpu';
  $('backend').textContent = session.backend;
  $('backend-line').hidden = false;
}

function focusIfLost(el) {
  // Move focus only when it would otherwise be lost (on a section that just disappeared).
  const active = document.activeElement;
  if (!active || active === document.body || active.offsetParent === null || active.closest('#model-screen, #error-screen')) {
    el.focus();
  }
}

// ---------------------------------------------------------------------------------------------
// Speech, sounds, camera

const speech = new Speech({
  captionEl: $('caption'),
  rateInput: $('rate'),
  voiceSelect: $('voice'),
  srOnlyInput: $('screen-reader-only'),
  // Speech failed twice for a caption, which VoiceOver then reads: say so once, as visible text.
  onFailed: () => { $('speech-note').hidden = false; },
});
initEarcon($('sounds'));

// iOS lets speech and Web Audio start only from a user gesture, and can take that back while the
// app is in the background: renew both on every tap.
function onGesture() {
  speech.unlock();
  unlockAudio();
}
for (const type of ['click', 'touchend', 'keydown']) document.addEventListener(type, onGesture, { capture: true });

const camera = new Camera($('preview'), ({ live, reason, message }) => {
  $('camera-message').textContent = message;
  $('camera-message').hidden = live;
  $('preview').hidden = !live;
  $('camera-retry').hidden = live || reason === 'unavailable';
  // Not while hidden: nobody hears it, and it would be stale on return.
  if (!live && cameraInUse(session.state) && !document.hidden) announce(message);
});

/** Starts the camera (asking for permission if the browser must) and notes that this launch wants it. */
function startCamera() {
  session.cameraWanted = true;
  return camera.start();
}

// A home-screen app on iOS asks for the camera again at every launch (WebKit bugs 215884,
// 252465), and the system alert would cover "Ready". So where a prompt may come, the camera
// starts on the first Describe (or when automatic mode is switched on), when the user expects
// it. Where permission is known to be granted, no alert comes: start at once.
async function cameraOnReady() {
  if (session.cameraWanted) { camera.start(); return; }
  let granted = false;
  try {
    granted = (await navigator.permissions.query({ name: 'camera' })).state === 'granted';
  } catch {
    granted = false;  // Safari before 16 and WebKitGTK may not know the "camera" permission name
  }
  if (granted || !IOS) startCamera();
}

$('camera-retry').addEventListener('click', async () => {
  if (await startCamera()) {
    announce('The camera is on.');
    $('capture').focus();
  }
});

// ---------------------------------------------------------------------------------------------
// Backgrounding. iOS suspends the page and its worker; the watchdogs count only active time
// (active-timer.js) and are paused while hidden. A caption in flight while the app was hidden
// gets a fresh watchdog on return, and is sent again once if it failed meanwhile.

const gpuWatchdog = new ActiveTimeout(GPU_WATCHDOG_MS, () => gpuHung());
const loadStall = new ActiveTimeout(LOAD_STALL_MS, () => restartEngine('load-stalled'));

document.addEventListener('visibilitychange', () => {
  if (document.hidden) {
    stopAuto();
    gpuWatchdog.pause();
    loadStall.pause();
    if (session.pending) session.pending.hiddenDuring = true;
    return;
  }
  loadStall.resume();
  if (session.pending && gpuWatchdog.active) gpuWatchdog.start();  // a fresh budget: the GPU was refused work meanwhile
  else gpuWatchdog.resume();
  // iOS mutes or stops the camera behind our back (calls, other apps, background): start it again.
  if (cameraInUse(session.state) && session.cameraWanted) {
    if (typeof camera.resume === 'function') camera.resume();
    else if (!camera.live && camera.reason !== 'denied') camera.start();
  }
  scheduleAuto();
  resumeAfterNetworkError();
});
// Chromium's page lifecycle (CDP freezes pages the same way): nothing to do but not count the time.
document.addEventListener('freeze', () => { gpuWatchdog.pause(); loadStall.pause(); });
document.addEventListener('resume', () => { gpuWatchdog.resume(); loadStall.resume(); });

// ---------------------------------------------------------------------------------------------
// Captioning

function sendFrame(frame, { auto: isAuto, retried = false }) {
  if (session.state !== 'ready' || !frame) return;
  const { width, height, imageData, canvas } = frame;
  const rgba = imageData.data;
  edgecap.lastFrame = { width, height, rgba: new Uint8ClampedArray(rgba) };
  if (canvas) auto.noteSent(canvas, width, height);
  const p = session.beginCaption(edgecap.lastFrame, isAuto);
  p.retried = retried;
  if (session.watchGpu) gpuWatchdog.start();
  go('caption');
  click();
  worker.postMessage({ type: ToWorker.CAPTION, id: p.id, width, height, pixels: rgba.buffer }, [rgba.buffer]);
}

function resend(frame, isAuto, retried) {
  const rgba = new Uint8ClampedArray(frame.rgba);
  sendFrame({ width: frame.width, height: frame.height, imageData: new ImageData(rgba, frame.width, frame.height), canvas: null }, { auto: isAuto, retried });
}

let gpuHangs = 0;

function gpuHung() {
  const p = session.pending;
  if (!p) return;
  session.pending = null;
  session.retryFrame = { frame: p.frame, auto: p.auto };
  // A hang right after the app was in the background is likely iOS refusing GPU work then: one
  // fresh GPU first, as for a lost device; otherwise (or the second time) the CPU.
  gpuHangs++;
  restartEngine(p.hiddenDuring && gpuHangs === 1 ? 'gpu-hung-background' : 'gpu-hung');
}

/** Replaces the worker (a hung GPU never answers) and loads the stored model again. */
function restartEngine(why) {
  loadStall.stop();
  gpuWatchdog.stop();
  worker.terminate();  // also releases its hold on the stored model file
  spawnWorker();
  if (why === 'gpu-hung-background') {
    announce('The graphics processor stopped answering while the app was in the background. Starting it again.');
  } else {
    session.forcedBackend = 'cpu';
    announce('The graphics processor stopped answering. Restarting on the main processor; descriptions will take longer.');
  }
  requestLoad({ kind: 'stored' });
}

function watchLoad(phase) {
  if (session.state === 'loading' && phase === 'load' && !session.forcedBackend && session.backendPref === 'auto') {
    loadStall.start();
  } else {
    loadStall.stop();
  }
}

function finishPending(id) {
  const p = session.takePending(id);
  if (p) gpuWatchdog.stop();
  return p;
}

// A photo or frame that could not be described: said in #image-error (role="alert"); the app stays
// ready, so the camera, Describe and the photo buttons are the way on.
function showImageError(message) {
  // The same words again would be announced again (a role="alert" whose text is replaced).
  if ($('image-error').textContent !== message) $('image-error').textContent = message;
  $('image-error').hidden = false;
}

function clearImageError() {
  $('image-error').hidden = true;
  $('image-error').textContent = '';
}

const PHOTO_PROBLEMS = {
  empty: () => 'That file is empty. Choose another photo.',
  'file-too-large': (e) => `That file is too large to be a photo (${Math.round(e.bytes / 1048576)} MB; at most ${MAX_PHOTO_BYTES / 1048576} MB). Choose another photo.`,
  'too-large': (e) => `That picture is too large to describe (${e.width} × ${e.height} pixels; at most ${Math.round(MAX_PHOTO_PIXELS / 1e6)} million pixels). Choose another photo.`,
  'no-pixels': () => 'That picture has no pixels (its size is zero). Choose another photo.',
  damaged: () => 'That picture file is damaged or incomplete, so it could not be opened. Choose another photo.',
  unreadable: () => 'That file could not be opened as a picture. Choose a photo (JPEG, PNG, HEIC, WebP or GIF).',
};

function onCaption(msg) {
  const p = finishPending(msg.id);
  if (!p || !session.can('captioned')) return;
  clearImageError();
  go('captioned');
  $('caption-time').textContent = String(Math.round(msg.ms));
  $('caption-meta').hidden = false;
  if (msg.backend) setBackend(msg.backend);
  session.lastResult = { ms: msg.ms, timingsMs: msg.timingsMs || null, backend: msg.backend || session.backend };
  // Automatic mode: the same words again mean the same scene; say nothing.
  if (p.auto && msg.caption === session.lastCaption) return;
  session.lastCaption = msg.caption;
  speech.present(msg.caption, { auto: p.auto });
}

function onCaptionError(msg) {
  const p = finishPending(msg.id);
  if (!p || !session.can('captioned')) return;
  if (msg.code === 'image') {
    go('image-error');
    showImageError(`That picture could not be described: ${msg.message}`);
    return;
  }
  // Work refused while the app was in the background: try the same frame once more.
  if (p.hiddenDuring && !p.retried && !document.hidden) {
    go('captioned');
    resend(p.frame, p.auto, true);
    return;
  }
  // The engine is in doubt: Retry loads the stored model again.
  session.lastLoad = { kind: 'stored' };
  showError(msg.code, msg.message);
}

/**
 * Automatic mode's frame: null for a black or frozen picture, skipped without a word (a passing
 * black draw must not raise an alert; Describe says why instead).
 */
function autoFrame() {
  const frame = camera.grabFrame();
  return frame && !camera.frameProblem(frame) ? frame : null;
}

$('capture').addEventListener('click', async () => {
  if (session.state !== 'ready') return;
  const gesture = navigator.userActivation ? navigator.userActivation.isActive : true;
  if (!camera.live && !session.cameraWanted) {
    // The first Describe of this launch: the camera (and its permission alert) comes now.
    announce('Starting the camera.');
    await startCamera();
  } else if (!camera.live && camera.starting) {
    await camera.starting;  // tapped just as the camera was starting
  }
  if (session.state !== 'ready') return;
  if (camera.live) {
    clearImageError();
    // Never a black or frozen picture: a black draw is tried again for a moment, then said.
    const { frame, problem } = await camera.takeFrame();
    if (problem) showImageError(problem.message);
    else if (frame) sendFrame(frame, { auto: false });
  } else if (camera.reason === 'muted') {
    showImageError('The camera is paused: the system muted it. It comes back by itself; if it does not, choose “Try the camera again”.');
  } else if (gesture && (navigator.userActivation ? navigator.userActivation.isActive : true)) {
    // No live camera: the system camera (or photo picker) stands in for it.
    $('photo').click();
  }
});

for (const [button, input] of [['choose-photo', 'photo'], ['choose-library', 'library']]) {
  $(button).addEventListener('click', () => $(input).click());
  $(input).addEventListener('change', async () => {
    const file = $(input).files && $(input).files[0];
    $(input).value = '';
    if (!file || session.state !== 'ready') return;
    clearImageError();
    let frame;
    try {
      frame = await decodePhoto(file);
    } catch (err) {
      const problem = PHOTO_PROBLEMS[err && err.reason] || PHOTO_PROBLEMS.unreadable;
      showImageError(problem(err || {}));
      return;
    }
    sendFrame(frame, { auto: false });
  });
}

$('repeat').addEventListener('click', () => {
  if (!speech.repeat()) announce('There is no description yet. Press Describe first.');
});
$('stop-speech').addEventListener('click', () => speech.stop());

// Automatic mode (auto-mode.js).
const auto = new AutoMode({
  intervalMs: AUTO_EVERY_MS,
  checkbox: $('auto'),
  video: $('preview'),
  canLook: () => session.state === 'ready' && camera.live,
  // Our own voice is let finish first (but a flag stuck for long does not hold the mode back).
  speaking: () => speech.speaking,
  grab: autoFrame,
  send: (frame) => sendFrame(frame, { auto: true }),
  onHold: (on) => holdWakeLock('auto', on),
});
function scheduleAuto() { auto.schedule(cameraInUse(session.state)); }
function stopAuto() { auto.stop(); }

// (No announcement: VoiceOver already says "on"/"off" for the switch.)
$('auto').addEventListener('change', () => {
  if (!$('auto').checked) holdWakeLock('auto', false);
  else if (!session.cameraWanted && cameraInUse(session.state)) startCamera();
  scheduleAuto();
});

// ---------------------------------------------------------------------------------------------
// Model: load, download, delete, errors

function requestLoad(source) {
  session.lastLoad = source;
  session.error = null;
  storeUI.resetProgress();
  go('load');
  holdWakeLock('loading', true);
  worker.postMessage({ type: ToWorker.LOAD, source, backend: session.loadBackend, gpu: gpuSettings });
  focusIfLost($('progress'));
}

// Ask once that the 240 MB model not be evicted under storage pressure (granted silently or not),
// and show the answer with the storage estimate.
function askPersistence() {
  if (navigator.storage && navigator.storage.persist) {
    navigator.storage.persisted()
      .then((yes) => yes || navigator.storage.persist())
      .then(() => showStorage())
      .catch(() => {});
  }
}

/** "About 40 GB free for this app; kept: yes/no" under the download, from the browser's estimate. */
async function showStorage() {
  const el = $('storage-info');
  if (!navigator.storage || !navigator.storage.estimate) { el.hidden = true; return; }
  try {
    const [{ usage, quota }, persisted] = await Promise.all([
      navigator.storage.estimate(),
      navigator.storage.persisted ? navigator.storage.persisted() : Promise.resolve(null),
    ]);
    const free = Number.isFinite(quota) && Number.isFinite(usage) ? formatBytes(Math.max(0, quota - usage)) : null;
    const kept = persisted === true ? 'The browser will keep the model even when space runs low.'
      : persisted === false ? 'The browser may delete the model if the device runs low on space; you would then download it again.'
        : '';
    el.textContent = `${free ? `Space this app may use: about ${free}. ` : ''}${kept}`.trim();
    el.dataset.persisted = String(persisted);
    el.hidden = !el.textContent;
  } catch {
    el.hidden = true;
  }
}

const storeUI = new StoreUI({
  form: $('download-form'),
  url: $('model-url'),
  download: $('download'),
  file: $('model-file'),
  chooseFile: $('choose-model-file'),
  extraChooseFile: [$('choose-file')],
  remove: $('remove-model'),
  extraDelete: [$('delete-model')],
  confirmBox: $('confirm-delete-box'),
  confirmText: $('confirm-delete-text'),
  confirmDelete: $('confirm-delete'),
  cancelDelete: $('cancel-delete'),
  info: $('model-info'),
  bar: $('progress'),
  label: $('progress-label'),
  text: $('progress-text'),
  pause: $('pause'),
}, {
  onDownload(url) {
    askPersistence();
    requestLoad({ kind: 'url', url: absoluteUrl(url) });
  },
  onFile(file) {
    askPersistence();
    requestLoad({ kind: 'file', file });
  },
  onPause() {
    worker.postMessage({ type: ToWorker.ABORT });
  },
  onDelete() {
    if (session.state === 'loading') worker.postMessage({ type: ToWorker.ABORT });
    worker.postMessage({ type: ToWorker.DELETE });
  },
  announce,
});

// The model file picker: iOS greys out a .gguf when `accept` names the extension.
{
  const accept = modelFileAccept(navigator.userAgent, navigator.maxTouchPoints);
  if (accept) $('model-file').setAttribute('accept', accept);
  else $('model-file').removeAttribute('accept');
}

// In an iOS Safari tab, the model would be downloaded into the tab's storage, which the Home
// Screen app does not share: offer Add to Home Screen first, and the download here only on request.
const installFirst = isIosSafari(navigator.userAgent, navigator.maxTouchPoints) &&
  !isStandalone(navigator, window.matchMedia && window.matchMedia.bind(window));
if (installFirst) {
  $('install-first').hidden = false;
  $('get-model').hidden = true;
  $('download-here').addEventListener('click', () => {
    $('get-model').hidden = false;
    $('install-first').hidden = true;
    $('model-url').focus();
  });
}

const ERROR_TEXT = {
  'storage-full': () => "There isn't enough free storage on this device for the model. Free some space (Settings, General, iPhone Storage), then choose Try again.",
  network: (m) => `The model could not be downloaded. ${m}`,
  checksum: (m) => m,
  model: (m) => `This model can't be used. ${sentence(m)} Choose another model file, or download the model again.`,
  blocked: (m) => `The model could not be downloaded. ${m}`,
  storage: (m) => `The model storage on this device failed. ${m}`,
  unsupported: (m) => `This device can't run the model that way. ${m}`,
  'device-lost': (m) => `The graphics processor stopped working. ${m}`,
  'no-wasm': () => 'edgecap cannot run in this browser: WebAssembly, which the describing engine needs, is turned off. ' +
    'On an iPhone or iPad this is Lockdown Mode. To use edgecap, keep Lockdown Mode and exclude this site: in Safari, ' +
    'tap the page menu (aA), Website Settings, and turn off Lockdown Mode for this site; for the Home Screen app, ' +
    'see Settings, Privacy & Security, Lockdown Mode, Configure Web Browsing. Then open edgecap again.',
};

/** The text ending with a full stop. */
function sentence(text) {
  const t = String(text || '').trim();
  return !t || /[.!?…)]$/.test(t) ? t : `${t}.`;
}

function showError(code, message, retryable = false) {
  holdWakeLock('loading', false);
  loadStall.stop();
  finishPending(session.pending && session.pending.id);  // its answer, if any, no longer matters
  session.error = { code: code || 'internal', message: message || '', retryable: !!retryable };
  const text = (ERROR_TEXT[code] || ((m) => `Something went wrong. ${m}`))(message || '');
  $('error').textContent = text;
  $('error').dataset.code = session.error.code;
  // A bad model file or a refused address gives the same answer again: offer only the ways out
  // that change something (another file, another address, delete). Without WebAssembly nothing helps
  // but the setting the message names.
  const noWasm = code === 'no-wasm';
  $('retry').hidden = noWasm || ((code === 'model' || code === 'blocked') && !session.workerDead);
  $('choose-file').hidden = noWasm;
  $('delete-model').hidden = noWasm;
  $('status').textContent = '';  // stale progress; the alert says what matters now
  go('fail');
  $('error-heading').focus();
}

$('retry').addEventListener('click', () => {
  if (session.workerDead) { location.reload(); return; }
  if (session.lastLoad) requestLoad(session.lastLoad);
  else start();
});

function onReady(msg) {
  holdWakeLock('loading', false);
  loadStall.stop();
  setBackend(msg.backend);
  storeUI.setStored(msg.model, null, msg.adapter, msg.backend === 'webgpu' ? { submitEvery: msg.submitEvery, gpuLimits: msg.gpuLimits } : null);
  go('ready');
  // Never let noise pass for a description: the tiny test models have random weights.
  $('test-model').hidden = !msg.testModel;
  const fellBack = msg.fallback
    ? ' The graphics processor could not be used, so descriptions run on the main processor and take longer.'
    : '';
  announce((msg.testModel
    ? 'Ready, with a test model that has random weights: its words are noise, not a description.'
    : 'Ready. Point the camera and press Describe.') + fellBack);
  focusIfLost($('capture'));
  cameraOnReady();
  if (session.retryFrame) {
    const { frame, auto: isAuto } = session.retryFrame;
    session.retryFrame = null;
    resend(frame, isAuto, true);
  }
}

function onStatus(msg) {
  if (!session.startingUp) return;
  session.startingUp = false;
  storeUI.setStored(msg.stored, msg.partial);
  if (modelParam) requestLoad({ kind: 'url', url: absoluteUrl(modelParam) });
  else if (msg.stored) requestLoad({ kind: 'stored' });
  else go('nothing-stored');  // stays in setup, and shows the storage estimate
}

function onDeleted() {
  finishPending(session.pending && session.pending.id);
  camera.stop();
  session.lastLoad = null;
  session.lastCaption = null;
  session.backend = null;
  auto.forget();
  $('caption').textContent = '';
  storeUI.setStored(null, null);
  go('deleted');
  announce('The model was deleted from this device.');
  focusIfLost($('model-heading'));
}

function onAborted(msg) {
  if (!session.can('aborted')) return;
  holdWakeLock('loading', false);
  const last = session.lastLoad;
  const partial = last && last.kind === 'url' ? { url: last.url, loaded: msg.loaded, size: msg.total } : null;
  storeUI.setStored(null, partial);
  go('aborted');
  const pct = msg.total ? ` at ${Math.floor((msg.loaded / msg.total) * 100)}%` : '';
  announce(`Download paused${pct}. Choose Resume the download to continue.`);
  focusIfLost($('download'));
}

/** The worker moved to another backend after losing the GPU device (see worker/engine.js). */
function onBackendChange(msg) {
  setBackend(msg.backend);
  storeUI.setStored(storeUI.stored, null, msg.adapter || '',
    msg.backend === 'webgpu' ? { submitEvery: msg.submitEvery, gpuLimits: msg.gpuLimits } : null);
  // The caption that met the loss is being made again: no error, only what changed.
  announce(msg.backend === 'webgpu'
    ? 'The graphics processor was reset; describing continues on it.'
    : 'The graphics processor stopped working, so descriptions now run on the main processor. They will take longer.');
}

let diagnosticsWaiter = null;

function onWorkerMessage(event) {
  if (event.target !== worker) return;  // a worker that was replaced
  const msg = event.data;
  switch (msg.type) {
    case FromWorker.STATUS: return onStatus(msg);
    case FromWorker.PROGRESS:
      if (session.state === 'loading') storeUI.progress(msg);
      watchLoad(msg.phase);
      return;
    case FromWorker.READY: return onReady(msg);
    case FromWorker.CAPTION: return onCaption(msg);
    case FromWorker.ERROR: return msg.id !== undefined ? onCaptionError(msg) : showError(msg.code, msg.message, msg.retryable);
    case FromWorker.BACKEND: return onBackendChange(msg);
    case FromWorker.DELETED: return onDeleted();
    case FromWorker.ABORTED: return onAborted(msg);
    case FromWorker.NOTICE: return announce(msg.message);
    case FromWorker.DIAGNOSTICS:
      if (diagnosticsWaiter) diagnosticsWaiter(msg);
      return undefined;
    default: return undefined;
  }
}

function onWorkerError(event) {
  if (event.target !== worker) return;
  // The worker script or the wasm engine failed to start: nothing else can work.
  session.workerDead = true;
  showError('internal', `The captioning engine could not start${event.message ? ` (${event.message})` : ''}. Try again reloads the app.`);
}

function start() {
  session.startingUp = true;
  worker.postMessage({ type: ToWorker.STATUS });
}

// A download cut off by the network (or by iOS suspending the page) continues by itself when
// the page is back and online, instead of waiting for Try again.
function resumeAfterNetworkError() {
  const last = session.lastLoad;
  if (session.state === 'error' && session.error && session.error.retryable && last && last.kind === 'url' &&
      !document.hidden && navigator.onLine !== false) {
    requestLoad(last);
  }
}
window.addEventListener('online', resumeAfterNetworkError);

// ---------------------------------------------------------------------------------------------
// About this device

function askWorkerDiagnostics(timeoutMs = 4000) {
  if (!worker || session.workerDead) return Promise.resolve(null);
  return new Promise((resolve) => {
    const t = setTimeout(() => { diagnosticsWaiter = null; resolve(null); }, timeoutMs);
    diagnosticsWaiter = (msg) => { clearTimeout(t); diagnosticsWaiter = null; resolve(msg); };
    worker.postMessage({ type: ToWorker.DIAGNOSTICS });
  });
}

async function pageDiagnostics() {
  let storage = null;
  try {
    if (navigator.storage && navigator.storage.estimate) {
      const { usage, quota } = await navigator.storage.estimate();
      storage = { usage, quota, persisted: navigator.storage.persisted ? await navigator.storage.persisted() : null };
    }
  } catch { /* unknown */ }
  const voices = 'speechSynthesis' in window ? speechSynthesis.getVoices() : [];
  return {
    build: document.querySelector('meta[name="edgecap-build"]')?.content || null,
    userAgent: navigator.userAgent,
    standalone: isStandalone(navigator, window.matchMedia && window.matchMedia.bind(window)),
    backend: session.backend,
    backendPref: session.backendPref,
    forcedBackend: session.forcedBackend,
    storage,
    lastResult: session.lastResult,
    camera: camera.live ? `on, ${$('preview').videoWidth}×${$('preview').videoHeight}` : `off${camera.reason ? ` (${camera.reason})` : session.cameraWanted ? '' : ' (starts at the first Describe)'}`,
    speech: 'speechSynthesis' in window
      ? `${voices.length} voices${speech.screenReaderOnly ? ', VoiceOver reads captions (speech off)' : ''}`
      : 'not available (VoiceOver reads the captions)',
  };
}

let diagnosticText_ = '';
$('show-diagnostics').addEventListener('click', async () => {
  $('show-diagnostics').setAttribute('aria-busy', 'true');
  const [fromWorker, fromPage] = await Promise.all([askWorkerDiagnostics(), pageDiagnostics()]);
  const lines = diagnosticLines(fromWorker, fromPage);
  renderDiagnostics($('diagnostics'), lines);
  diagnosticText_ = diagnosticText(lines);
  $('diagnostics').hidden = false;
  $('copy-diagnostics').hidden = false;
  $('show-diagnostics').textContent = 'Refresh the details';
  $('show-diagnostics').removeAttribute('aria-busy');
  announce(`${lines.length} details listed below.`);
});

$('copy-diagnostics').addEventListener('click', async () => {
  try {
    await navigator.clipboard.writeText(diagnosticText_);
    announce('The details were copied. Paste them into a message to us.');
  } catch {
    announce("Copying was not allowed; the details are listed above: select them to copy.");
  }
});

// ---------------------------------------------------------------------------------------------
// Start

initServiceWorker($('update-banner'), $('reload'));
// The install-first panel says it already, where it shows.
if (!installFirst) initInstallHint($('install-hint'), $('dismiss-install-hint'));
if (!hasWebAssembly(window)) {
  // Lockdown Mode: no engine can start. Say so plainly instead of a generic failure.
  session.workerDead = true;
  showError('no-wasm', '');
} else {
  spawnWorker();
  start();
}
