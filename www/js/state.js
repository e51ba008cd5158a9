// The page's states and the only ways between them, as one table, plus the session object that
// holds everything else the page must remember. Pure: no DOM here, so node:test checks it
// (tests/web/state.test.mjs), and app.js never reads state back from the page.
//
// body[data-state] mirrors `Session.state` (the test contract: setup | loading | ready |
// captioning | error).

/** State → event → next state. An event missing from a state's row is a bug, not a no-op. */
export const TRANSITIONS = Object.freeze({
  // No usable model yet: download it, or pick a file.
  setup: Object.freeze({
    load: 'loading',       // a download, a picked file, or the stored model
    fail: 'error',         // the engine could not start, or the browser can't run it (Lockdown)
    deleted: 'setup',      // a delete that raced the start-up status
    'nothing-stored': 'setup', // the start-up status found no model
  }),
  // Download, check, copy or load into the engine.
  loading: Object.freeze({
    ready: 'ready',
    aborted: 'setup',      // the user paused the download
    fail: 'error',
    deleted: 'setup',
    load: 'loading',       // loading again (a hung GPU restarts the load on the CPU)
  }),
  ready: Object.freeze({
    caption: 'captioning',
    load: 'loading',       // another model, or a GPU restart
    fail: 'error',
    deleted: 'setup',
  }),
  captioning: Object.freeze({
    captioned: 'ready',
    'image-error': 'ready', // that picture could not be described; the engine is fine
    load: 'loading',        // the GPU hung during the caption: restart on the CPU
    fail: 'error',
    deleted: 'setup',
  }),
  error: Object.freeze({
    load: 'loading',       // Try again, another file or address
    deleted: 'setup',
    fail: 'error',         // a second problem replaces the first
  }),
});

export const STATES = Object.freeze(Object.keys(TRANSITIONS));

const HISTORY = 200;

/** The state after `event` in `state`; throws on a transition the table does not have. */
export function next(state, event) {
  const row = TRANSITIONS[state];
  if (!row) throw new Error(`unknown state ${JSON.stringify(state)}`);
  const to = row[event];
  if (!to) throw new Error(`no transition from ${state} on ${JSON.stringify(event)}`);
  return to;
}

/** True where the camera, Describe and automatic mode are in use. */
export function cameraInUse(state) {
  return state === 'ready' || state === 'captioning';
}

/**
 * Everything the page remembers besides the state itself. One object, so a test can look at it
 * and nothing is read back from the DOM.
 */
export class Session {
  constructor({ backendPref = 'auto' } = {}) {
    this.state = 'setup';
    /** What the user asked for: "auto" | "webgpu" | "cpu" (?backend=). */
    this.backendPref = backendPref;
    /** "cpu" once a hung GPU forced the CPU for the rest of this visit. */
    this.forcedBackend = null;
    /** The engine's backend once loaded: "webgpu" | "cpu" | null. */
    this.backend = null;
    /** What Retry loads again: {kind:"url", url} | {kind:"file", file} | {kind:"stored"} | null. */
    this.lastLoad = null;
    /** The error on screen: {code, message, retryable} | null. */
    this.error = null;
    /** The worker script or wasm failed to start: only a reload helps. */
    this.workerDead = false;
    /** Waiting for the worker's start-up status (only it decides what to load first). */
    this.startingUp = false;
    /** Caption ids, and the one in flight: {id, auto, frame, hiddenDuring, retried} | null. */
    this.captionSeq = 0;
    this.pending = null;
    /** A frame to caption again once a restarted engine is ready: {frame, auto} | null. */
    this.retryFrame = null;
    /** The last caption shown, so automatic mode does not say the same words twice. */
    this.lastCaption = null;
    /** The last caption's result from the worker ({ms, timingsMs, backend}) for diagnostics. */
    this.lastResult = null;
    /** The camera was started in this launch (the first Describe asks for it; see app.js). */
    this.cameraWanted = false;
    /** The last transitions taken, [from, event, to], for diagnostics and tests (bounded). */
    this.history = [];
  }

  /** Moves to the state after `event`; returns it. Throws on a transition the table lacks. */
  apply(event) {
    const from = this.state;
    this.state = next(from, event);
    this.history.push([from, event, this.state]);
    if (this.history.length > HISTORY) this.history.shift();
    return this.state;
  }

  /** Whether `event` is allowed now (for events that may legitimately arrive late). */
  can(event) {
    return Boolean(TRANSITIONS[this.state][event]);
  }

  /** The backend the next load asks the worker for. */
  get loadBackend() {
    return this.forcedBackend || this.backendPref;
  }

  /** The hung-GPU watchdog guards only a WebGPU the app chose itself (?backend=webgpu opts out). */
  get watchGpu() {
    return this.backend === 'webgpu' && this.backendPref === 'auto' && !this.forcedBackend;
  }

  /** Starts a caption: a fresh id and the pending record. */
  beginCaption(frame, auto) {
    const id = ++this.captionSeq;
    this.pending = { id, auto, frame, hiddenDuring: false, retried: false };
    return this.pending;
  }

  /** The pending caption if `id` is its answer (late answers of replaced captions are ignored). */
  takePending(id) {
    if (!this.pending || this.pending.id !== id) return null;
    const p = this.pending;
    this.pending = null;
    return p;
  }
}
