// edgecap's page: UI state, camera, speech; the model itself lives in worker.js (docs/web-app.md).
//
// Test contract (tests/e2e rely on it): body[data-state] ∈ setup|loading|ready|captioning|error;
// ?model=URL loads and stores that model on start; ?backend=cpu|webgpu|auto is passed to the
// worker; #capture, #caption (exactly the caption text), #backend ("webgpu"|"cpu"), #caption-time
// (ms of the last caption, a number), #progress, #error, #retry, #choose-file, #delete-model,
// #image-error (a photo or frame that could not be described; the app stays ready).
// Test and benchmark settings: ?auto-interval=MS (automatic mode's period, default 3000, clamped
// to 200–60000), ?count-gpu-buffers=1 (the worker counts WebGPU buffers: see worker.js "stats"),
// ?submit-every=N (WebGPU: at most N dispatches per command buffer, 1–4096; 0 or absent: the
// engine's default for the adapter) and ?gpu-limits=default|adapter (WebGPU device limits: the
// spec's defaults or the adapter's own, the default). #model-info shows the adapter and the
// effective settings, also as data-submit-every (a number, or "none") and data-gpu-limits.
//
// The only global, for tests: window.edgecap = { lastFrame, worker }. lastFrame is
// {width, height, rgba} with rgba a Uint8ClampedArray copy of the last frame sent to be captioned,
// so a test can caption exactly that frame with the CLI and compare the two captions; worker is
// the model worker, to post protocol messages directly (replaced if a hung GPU forces a restart).
import { Camera, decodePhoto, MAX_PHOTO_PIXELS, MAX_PHOTO_BYTES } from './camera.js';
import { thumbnail, changed } from './frame-diff.js';
import { Speech } from './speech.js';
import { initEarcon, unlockAudio, click } from './earcon.js';
import { StoreUI, absoluteUrl } from './store-ui.js';
import { initServiceWorker } from './sw-update.js';
import { initInstallHint } from './install-hint.js';
import { holdWakeLock } from './wake-lock.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
// Automatic mode looks at the view this often (?auto-interval=MS for tests and benchmarks).
const AUTO_EVERY_MS = clampedInt(params.get('auto-interval'), 3000, 200, 60000);
// A WebGPU caption that hasn't answered by then is taken to be hung (a wedged driver never rejects):
// the worker is restarted on the CPU. Far above a real first caption, shader compilation included.
// Only when the app chose WebGPU itself: `?backend=webgpu` asks for it whatever it costs (tests run
// it on SwiftShader, a software GPU that takes minutes).
const GPU_WATCHDOG_MS = 45000;
// Loading reports each tensor; this long without a word while loading for the GPU means it hangs.
const LOAD_STALL_MS = 30000;

const backendPref = ['cpu', 'webgpu', 'auto'].includes(params.get('backend')) ? params.get('backend') : 'auto';
const modelParam = params.get('model');

const workerUrl = params.get('count-gpu-buffers') === '1' ? 'worker.js?count-gpu-buffers=1' : 'worker.js';
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
const edgecap = { lastFrame: null, worker: null };
window.edgecap = edgecap;

function spawnWorker() {
  worker = new Worker(workerUrl, { type: 'module' });
  edgecap.worker = worker;
  worker.addEventListener('message', onWorkerMessage);
  worker.addEventListener('error', onWorkerError);
}

// ---------------------------------------------------------------------------------------------
// State and announcements

let state = document.body.dataset.state;

function setState(next) {
  state = next;
  document.body.dataset.state = next;
  $('capture').setAttribute('aria-disabled', String(next !== 'ready'));
  if (next !== 'ready' && next !== 'captioning') stopAuto();
  else scheduleAuto();
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
  $('backend').textContent = backend === 'webgpu' ? 'webgpu' : 'cpu';
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
});
initEarcon($('sounds'));

// iOS lets speech and Web Audio start only from a user gesture: use the first one (and keep
// resuming audio, which iOS suspends when the app goes to the background).
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
  if (!live && (state === 'ready' || state === 'captioning')) announce(message);
});

$('camera-retry').addEventListener('click', async () => {
  if (await camera.start()) {
    announce('The camera is on.');
    $('capture').focus();
  }
});

document.addEventListener('visibilitychange', () => {
  if (document.hidden) {
    stopAuto();
    return;
  }
  // iOS stops the camera behind our back (calls, other apps, background): start it again.
  if ((state === 'ready' || state === 'captioning') && !camera.live && camera.reason !== 'denied') camera.start();
  scheduleAuto();
});

// ---------------------------------------------------------------------------------------------
// Captioning

let captionSeq = 0;
let pending = null;     // {id, auto, frame, watchdog} of the caption being made
let lastThumb = null;   // thumbnail of the last frame sent, for automatic mode
let lastCaption = null;

function sendFrame(frame, { auto }) {
  if (state !== 'ready' || !frame) return;
  const { width, height, imageData, canvas } = frame;
  const rgba = imageData.data;
  edgecap.lastFrame = { width, height, rgba: new Uint8ClampedArray(rgba) };
  if (canvas) lastThumb = thumbnail(canvas, width, height);
  const id = ++captionSeq;
  pending = { id, auto, frame: edgecap.lastFrame, watchdog: 0 };
  if ($('backend').textContent === 'webgpu' && backendPref === 'auto') pending.watchdog = setTimeout(gpuHung, GPU_WATCHDOG_MS);
  setState('captioning');
  click();
  worker.postMessage({ type: 'caption', id, width, height, pixels: rgba.buffer }, [rgba.buffer]);
}

let retryFrame = null;  // a frame to caption again once the CPU restart is ready

function gpuHung() {
  if (!pending) return;
  const { frame, auto } = pending;
  pending = null;
  retryFrame = { frame, auto };
  restartOnCpu();
}

function restartOnCpu() {
  clearTimeout(loadStallTimer);
  worker.terminate();  // also releases its hold on the stored model file
  spawnWorker();
  forcedBackend = 'cpu';
  announce('The graphics processor stopped answering. Restarting on the main processor; descriptions will take longer.');
  requestLoad({ kind: 'stored' });
}

let loadStallTimer = 0;
function watchLoad(phase) {
  clearTimeout(loadStallTimer);
  if (state === 'loading' && phase === 'load' && !forcedBackend && backendPref === 'auto') {
    loadStallTimer = setTimeout(restartOnCpu, LOAD_STALL_MS);
  }
}

function finishPending() {
  const p = pending;
  if (p) clearTimeout(p.watchdog);
  pending = null;
  return p;
}

// A photo or frame that could not be described: said in #image-error (role="alert"); the app stays
// ready, so the camera, Describe and the photo buttons are the way on.
function showImageError(message) {
  $('image-error').textContent = message;
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
  if (!pending || msg.id !== pending.id) return;
  const { auto } = finishPending();
  clearImageError();
  setState('ready');
  $('caption-time').textContent = String(Math.round(msg.ms));
  $('caption-meta').hidden = false;
  if (msg.backend) setBackend(msg.backend);
  // Automatic mode: the same words again mean the same scene; say nothing.
  if (auto && msg.caption === lastCaption) return;
  lastCaption = msg.caption;
  speech.present(msg.caption, { auto });
}

function onCaptionError(msg) {
  if (!pending || msg.id !== pending.id) return;
  finishPending();
  if (msg.code === 'image') {
    setState('ready');
    showImageError(`That picture could not be described: ${msg.message}`);
    return;
  }
  // The engine is in doubt: Retry loads the stored model again.
  lastLoad = { kind: 'stored' };
  showError(msg.code, msg.message);
}

$('capture').addEventListener('click', async () => {
  if (state !== 'ready') return;
  if (!camera.live && camera.starting) await camera.starting;  // tapped just as the app opened
  if (camera.live) {
    sendFrame(camera.grabFrame(), { auto: false });
  } else if (navigator.userActivation ? navigator.userActivation.isActive : true) {
    // No live camera: the system camera (or photo picker) stands in for it.
    $('photo').click();
  }
});

for (const [button, input] of [['choose-photo', 'photo'], ['choose-library', 'library']]) {
  $(button).addEventListener('click', () => $(input).click());
  $(input).addEventListener('change', async () => {
    const file = $(input).files && $(input).files[0];
    $(input).value = '';
    if (!file || state !== 'ready') return;
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

// Automatic mode: every few seconds, caption only if the view changed since the last caption.
let autoTimer = 0;

function scheduleAuto() {
  const on = $('auto').checked && !document.hidden && (state === 'ready' || state === 'captioning');
  holdWakeLock('auto', $('auto').checked);
  if (on && !autoTimer) {
    autoTimer = setInterval(autoTick, AUTO_EVERY_MS);
    autoTick();
  } else if (!on) {
    stopAuto();
  }
}

function stopAuto() {
  clearInterval(autoTimer);
  autoTimer = 0;
}

function autoTick() {
  // While our own voice is still reading, let it finish; the next tick looks again.
  if (state !== 'ready' || !camera.live || speech.speaking) return;
  const video = $('preview');
  const thumb = thumbnail(video, video.videoWidth, video.videoHeight);
  if (lastThumb && thumb && !changed(thumb, lastThumb)) return;
  sendFrame(camera.grabFrame(), { auto: true });
}

// (No announcement: VoiceOver already says "on"/"off" for the switch.)
$('auto').addEventListener('change', () => {
  if (!$('auto').checked) holdWakeLock('auto', false);
  scheduleAuto();
});

// ---------------------------------------------------------------------------------------------
// Model: load, download, delete, errors

let lastLoad = null;     // what Retry asks the worker to load again
let workerDead = false;
let forcedBackend = null; // "cpu" after a hung GPU, for the rest of this visit

function requestLoad(source) {
  lastLoad = source;
  storeUI.resetProgress();
  setState('loading');
  holdWakeLock('loading', true);
  worker.postMessage({ type: 'load', source, backend: forcedBackend || backendPref, gpu: gpuSettings });
  focusIfLost($('progress'));
}

// Ask once that the 240 MB model not be evicted under storage pressure (granted silently or not).
function askPersistence() {
  if (navigator.storage && navigator.storage.persist) {
    navigator.storage.persisted().then((yes) => yes || navigator.storage.persist()).catch(() => {});
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
    worker.postMessage({ type: 'abort' });
  },
  onDelete() {
    if (state === 'loading') worker.postMessage({ type: 'abort' });
    worker.postMessage({ type: 'delete' });
  },
  announce,
});

const ERROR_TEXT = {
  'storage-full': () => "There isn't enough free storage on this device for the model. Free some space (Settings, General, iPhone Storage), then choose Try again.",
  network: (m) => `The model could not be downloaded. ${m}`,
  checksum: (m) => m,
  model: (m) => `This model can't be used. ${sentence(m)} Choose another model file, or download the model again.`,
  blocked: (m) => `The model could not be downloaded. ${m}`,
  storage: (m) => `The model storage on this device failed. ${m}`,
  unsupported: (m) => `This device can't run the model that way. ${m}`,
  'device-lost': (m) => `The graphics processor stopped working. ${m}`,
};

/** The text ending with a full stop. */
function sentence(text) {
  const t = String(text || '').trim();
  return !t || /[.!?…)]$/.test(t) ? t : `${t}.`;
}

function showError(code, message, retryable = false) {
  holdWakeLock('loading', false);
  const text = (ERROR_TEXT[code] || ((m) => `Something went wrong. ${m}`))(message || '');
  $('error').textContent = text;
  $('error').dataset.code = code || 'internal';
  $('error').dataset.retryable = String(!!retryable);
  // A bad model file or a refused address gives the same answer again: offer only the ways out
  // that change something (another file, another address, delete).
  $('retry').hidden = (code === 'model' || code === 'blocked') && !workerDead;
  $('status').textContent = '';  // stale progress; the alert says what matters now
  setState('error');
  $('error-heading').focus();
}

$('retry').addEventListener('click', () => {
  if (workerDead) { location.reload(); return; }
  if (lastLoad) requestLoad(lastLoad);
  else start();
});

function onReady(msg) {
  holdWakeLock('loading', false);
  setBackend(msg.backend);
  storeUI.setStored(msg.model, null, msg.adapter, msg.backend === 'webgpu' ? { submitEvery: msg.submitEvery, gpuLimits: msg.gpuLimits } : null);
  setState('ready');
  // Never let noise pass for a description: the tiny test models have random weights.
  $('test-model').hidden = !msg.testModel;
  announce(msg.testModel
    ? 'Ready, with a test model that has random weights: its words are noise, not a description.'
    : 'Ready. Point the camera and press Describe.');
  focusIfLost($('capture'));
  camera.start();
  if (retryFrame) {
    const { frame, auto } = retryFrame;
    retryFrame = null;
    const rgba = new Uint8ClampedArray(frame.rgba);
    sendFrame({ width: frame.width, height: frame.height, imageData: new ImageData(rgba, frame.width, frame.height), canvas: null }, { auto });
  }
}

let startingUp = false;  // only the start-up status decides what to load (tests may ask for more)

function onStatus(msg) {
  if (!startingUp) return;
  startingUp = false;
  storeUI.setStored(msg.stored, msg.partial);
  if (modelParam) requestLoad({ kind: 'url', url: absoluteUrl(modelParam) });
  else if (msg.stored) requestLoad({ kind: 'stored' });
  else setState('setup');
}

function onDeleted() {
  camera.stop();
  lastLoad = null;
  lastCaption = null;
  lastThumb = null;
  $('caption').textContent = '';
  storeUI.setStored(null, null);
  setState('setup');
  announce('The model was deleted from this device.');
  focusIfLost($('model-heading'));
}

function onAborted(msg) {
  holdWakeLock('loading', false);
  const partial = lastLoad && lastLoad.kind === 'url' ? { url: lastLoad.url, loaded: msg.loaded, size: msg.total } : null;
  storeUI.setStored(null, partial);
  setState('setup');
  const pct = msg.total ? ` at ${Math.floor((msg.loaded / msg.total) * 100)}%` : '';
  announce(`Download paused${pct}. Choose Resume the download to continue.`);
  focusIfLost($('download'));
}

function onWorkerMessage(event) {
  if (event.target !== worker) return;  // a worker that was replaced
  const msg = event.data;
  if (msg.type !== 'progress') clearTimeout(loadStallTimer);
  switch (msg.type) {
    case 'status': return onStatus(msg);
    case 'progress':
      if (state === 'loading') storeUI.progress(msg);
      watchLoad(msg.phase);
      return;
    case 'ready': return onReady(msg);
    case 'caption': return onCaption(msg);
    case 'error': return msg.id !== undefined ? onCaptionError(msg) : showError(msg.code, msg.message, msg.retryable);
    case 'backend':
      setBackend(msg.backend);
      if (msg.adapter) storeUI.setStored(storeUI.stored, null, msg.adapter);
      announce('The graphics processor stopped working, so descriptions now run on the main processor. They will take longer.');
      return;
    case 'deleted': return onDeleted();
    case 'aborted': return onAborted(msg);
    case 'notice': return announce(msg.message);
    default: return undefined;
  }
}

function onWorkerError(event) {
  if (event.target !== worker) return;
  // The worker script or the wasm engine failed to start: nothing else can work.
  workerDead = true;
  showError('internal', `The captioning engine could not start${event.message ? ` (${event.message})` : ''}. Try again reloads the app.`);
}

function start() {
  startingUp = true;
  worker.postMessage({ type: 'status' });
}

// A download cut off by the network (or by iOS suspending the page) continues by itself when
// the page is back and online, instead of waiting for Try again.
function resumeAfterNetworkError() {
  if (state === 'error' && $('error').dataset.retryable === 'true' && lastLoad && lastLoad.kind === 'url' &&
      !document.hidden && navigator.onLine !== false) {
    requestLoad(lastLoad);
  }
}
window.addEventListener('online', resumeAfterNetworkError);
document.addEventListener('visibilitychange', resumeAfterNetworkError);

spawnWorker();
initServiceWorker($('update-banner'), $('reload'));
initInstallHint($('install-hint'), $('dismiss-install-hint'));
start();
