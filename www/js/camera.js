// The back camera as a <video>, and frames from it (or from a photo) as RGBA at their own size.
import { FrameClock, isBlack, frameProblem } from './frame-check.js';

const CONSTRAINTS = { video: { facingMode: 'environment', width: { ideal: 1280 } }, audio: false };
// Photos are scaled down to this on their long side: a 12–48 MP photo as RGBA is 48–190 MB, more
// than iOS gives a canvas, and the model looks at 384×384 anyway.
const MAX_PHOTO_SIDE = 2048;
// Pictures are refused before decoding when their header says they are larger than this (a
// "decompression bomb": a small file claiming e.g. 100000×100000 pixels would need 40 GB to decode).
// 64 Mi pixels keeps 48 MP phone photos (8064×6048) and panoramas.
export const MAX_PHOTO_PIXELS = 64 * 1024 * 1024;
const MAX_PHOTO_DIMENSION = 32768;
// Files larger than this are not read at all (no photo is this big; a video picked by mistake can be).
export const MAX_PHOTO_BYTES = 128 * 1024 * 1024;

const MESSAGES = {
  denied: 'Camera access is not allowed, so the live camera is off. You can allow it in the Settings app (Apps, Safari, Camera). Meanwhile, take a photo or choose one from your library to describe it.',
  none: 'No camera was found. Choose a photo from your library to describe it.',
  busy: 'The camera is being used by another app. Close that app, then choose “Try the camera again”.',
  ended: 'The camera stopped. Choose “Try the camera again”, or take a photo to describe it.',
  muted: 'The camera is paused: the system muted it (another app may be using it, or a call is in progress). It comes back by itself; if it does not, choose “Try the camera again”.',
  unavailable: 'This browser gives no camera access here. Take a photo or choose one from your library to describe it.',
  error: 'The camera could not start. Choose “Try the camera again”, or take a photo to describe it.',
};

// How long resume() lets a muted or silent track come back by itself before restarting the
// camera. WebKit keeps a backgrounded page's capture muted, not ended, so that it comes back
// quickly in the foreground (WebKit PRs 32625, 32807); a track still muted (or sending nothing)
// this long after the page is shown again is not coming back without a new getUserMedia.
const RESUME_WAIT_MS = 1500;
// How often the frame count is read. requestVideoFrameCallback only runs when the page renders
// (not while its main thread or the compositor is busy); the element's frame count goes up as the
// camera delivers, rendered or not. Either one noting a frame keeps the picture "fresh".
const FRAME_POLL_MS = 250;
// How long start() waits for a first picture that is not black: a camera's first frames can be
// dark while its exposure settles. A scene that is really black costs this much once.
const SETTLE_MS = 1000;
const HAVE_CURRENT_DATA = 2;  // HTMLMediaElement.readyState: the current frame can be drawn
// How long takeFrame() looks again at a black picture before saying so. A camera's picture can be
// black for a moment (exposure settling after the camera comes back), and a browser's copy of the
// video can be: WebKitGTK under load draws a playing camera video as nothing, on and off for
// seconds (measured at load 13–16 on 2 cores: a quarter to all of the draws, depending on the
// second; each draw that fails is followed by good ones within a few tenths of a second).
const BLACK_RETRY_MS = 1500;

const now = () => performance.now();

function reasonOf(err) {
  switch (err && err.name) {
    case 'NotAllowedError':
    case 'SecurityError': return 'denied';
    case 'NotFoundError':
    case 'OverconstrainedError': return 'none';
    case 'NotReadableError':
    case 'AbortError': return 'busy';
    default: return 'error';
  }
}

/**
 * What resume() does when the page is shown again (pure, for tests):
 * 'none': the camera is not wanted now (never started, stopped, or the page is hidden), or
 *   restarting cannot help (access denied, no camera API);
 * 'start': there is no live track (iOS ended it, or it failed earlier): start it again;
 * 'check': there is a live track, maybe muted or stalled: give it RESUME_WAIT_MS to deliver a
 *   new, unmuted frame, and restart it if it does not.
 */
export function resumeAction({ wanted, hidden, reason, trackState }) {
  if (!wanted || hidden) return 'none';
  if (reason === 'denied' || reason === 'unavailable') return 'none';
  if (trackState !== 'live') return 'start';
  return 'check';
}

export class Camera {
  /**
   * onChange({live, reason, message}) is called when the camera starts, stops, is muted by the
   * system (reason 'muted', live false) or comes back (live true).
   */
  constructor(video, onChange) {
    this.video = video;
    this.onChange = onChange;
    this.stream = null;
    this.reason = null;
    this.starting = null;
    this.wanted = false;    // started and not stopped: resume() may bring it back
    this.clock = null;      // FrameClock of the current stream
    this.sampleFrames = null;
    this.poll = 0;
    this.mutedStream = null; // the stream whose muting was reported
    this.thumb = null;      // small canvas for the start-up black check
    this.canvas = document.createElement('canvas');
  }

  /** A muted track is not live: WebKit mutes capture in the background and sends black frames. */
  get live() {
    const track = this.#track();
    return !!track && track.readyState === 'live' && !track.muted && this.video.videoWidth > 0;
  }

  #track() {
    return (this.stream && this.stream.getVideoTracks()[0]) || null;
  }

  /** Starts the camera (a no-op when live). Resolves to whether it is live. */
  start() {
    this.wanted = true;
    if (!this.starting) this.starting = this.#start(false).finally(() => { this.starting = null; });
    return this.starting;
  }

  /**
   * Call when the page is shown again (visibilitychange). Brings back a camera that iOS stopped,
   * muted or stalled meanwhile: waits a moment for a muted track to unmute by itself, and restarts
   * it if it does not. Does nothing for a camera that was never started or was stopped, or while
   * the page is hidden. Resolves to whether the camera is live.
   */
  resume() {
    if (this.starting) return this.starting;
    const track = this.#track();
    const action = resumeAction({ wanted: this.wanted, hidden: document.hidden, reason: this.reason, trackState: track && track.readyState });
    if (action === 'none') return Promise.resolve(this.live);
    if (action === 'start') return this.start();
    this.starting = this.#recover(track).finally(() => { this.starting = null; });
    return this.starting;
  }

  async #recover(track) {
    const since = now();
    // iOS may have paused the element along with the page.
    if (this.video.paused) this.video.play().catch(() => {});
    const fresh = () => this.#track() === track && !track.muted && (this.#sample(), this.clock.seenSince(since));
    if (await waitFor(fresh, RESUME_WAIT_MS)) return this.live;
    if (!this.wanted || document.hidden || this.#track() !== track) return this.live;
    return this.#start(true);
  }

  async #start(restart) {
    if (!restart && this.live) return true;
    this.#release();
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return this.#fail('unavailable');
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia(CONSTRAINTS);
    } catch (err) {
      return this.#fail(reasonOf(err));
    }
    if (!this.wanted) {
      // stop() came while the permission prompt was up.
      for (const t of stream.getTracks()) t.stop();
      return false;
    }
    this.stream = stream;
    const track = stream.getVideoTracks()[0];
    // iOS ends the track when another app takes the camera or a call comes in…
    track.addEventListener('ended', () => {
      if (this.stream === stream) this.#fail('ended');
    });
    // …and mutes it (black frames, or none) in the background or while something else has the
    // camera for a moment. It may come back by itself: keep the stream, say so, wait for unmute.
    track.addEventListener('mute', () => {
      if (this.stream === stream) this.#reportMuted(stream);
    });
    track.addEventListener('unmute', () => {
      if (this.stream === stream) this.#unmuted();
    });
    this.video.srcObject = stream;
    this.#watchFrames(stream);
    try {
      await this.video.play();
    } catch {
      // autoplay of a muted, inline video is allowed; a failure here shows as no frames below
    }
    if (!track.muted) {
      // Live means a picture can be taken: a size (metadata) is not enough, a frame must be there
      // (WebKitGTK draws black between the two). Then, while the camera's first frames are still
      // black (exposure settling; iOS may start the camera on the first Describe), a moment more.
      if (this.video.readyState < HAVE_CURRENT_DATA) await once(this.video, 'loadeddata', 3000);
      await waitFor(() => this.stream !== stream || !this.#thumbnailBlack(), SETTLE_MS);
    }
    if (this.stream !== stream) return this.live;  // stopped or restarted meanwhile
    if (track.readyState === 'live' && track.muted) return this.#reportMuted(stream);
    if (!this.live) return this.#fail('error');
    this.reason = null;
    this.mutedStream = null;
    this.onChange({ live: true, reason: null, message: '' });
    return true;
  }

  #unmuted() {
    if (this.reason !== 'muted') return;
    if (this.video.readyState < HAVE_CURRENT_DATA) {
      // Muted since the start: no picture yet. It is live once its first frame is there.
      this.video.addEventListener('loadeddata', () => { if (this.#track() && !this.#track().muted) this.#unmuted(); }, { once: true });
      return;
    }
    if (!this.live) return;
    this.reason = null;
    this.mutedStream = null;
    this.onChange({ live: true, reason: null, message: '' });
  }

  /** Once per stream: the mute event can come while start() is still looking at the same track. */
  #reportMuted(stream) {
    if (this.mutedStream !== stream) {
      this.mutedStream = stream;
      this.#report('muted');
    }
    return false;
  }

  #report(reason) {
    this.reason = reason;
    this.onChange({ live: false, reason, message: MESSAGES[reason] || MESSAGES.error });
    return false;
  }

  #fail(reason) {
    this.#release();
    return this.#report(reason);
  }

  /** Turns the camera off for good (until start()): resume() leaves it off. */
  stop() {
    this.wanted = false;
    this.#release();
  }

  #release() {
    clearInterval(this.poll);
    this.poll = 0;
    this.clock = null;
    this.sampleFrames = null;
    if (this.stream) {
      for (const track of this.stream.getTracks()) track.stop();
    }
    this.stream = null;
    this.video.srcObject = null;
  }

  /**
   * Notes each frame the camera delivers (FrameClock), to tell a frozen picture from a still
   * scene: requestVideoFrameCallback where there is one, and the element's frame count; else
   * (no rVFC) the playback time. Not the pixels: a still scene gives identical fresh frames.
   */
  #watchFrames(stream) {
    const video = this.video;
    const clock = (this.clock = new FrameClock(now()));
    if (video.requestVideoFrameCallback) {
      const onFrame = () => {
        if (this.stream !== stream) return;
        clock.frame(now());
        video.requestVideoFrameCallback(onFrame);
      };
      video.requestVideoFrameCallback(onFrame);
    }
    let count = 0;
    let time = -1;
    this.sampleFrames = () => {
      if (this.stream !== stream) return;
      const quality = video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality() : null;
      const n = quality ? quality.totalVideoFrames : 0;
      if (n > count) {
        count = n;
        clock.frame(now());
      } else if (!video.requestVideoFrameCallback && !n && video.currentTime !== time) {
        // The weakest sign, used only without the two above: Chromium moves currentTime on for a
        // stream that sends nothing, so it cannot tell a stalled camera from a live one.
        time = video.currentTime;
        clock.frame(now());
      }
    };
    this.poll = setInterval(this.sampleFrames, FRAME_POLL_MS);
  }

  #sample() {
    if (this.sampleFrames) this.sampleFrames();
  }

  /** Whether the picture on the video now is black (a 64×48 copy: cheap enough to ask often). */
  #thumbnailBlack() {
    if (!this.thumb) {
      this.thumb = document.createElement('canvas');
      this.thumb.width = 64;
      this.thumb.height = 48;
    }
    const ctx = this.thumb.getContext('2d', { willReadFrequently: true });
    ctx.clearRect(0, 0, 64, 48);
    ctx.drawImage(this.video, 0, 0, 64, 48);
    return isBlack(ctx.getImageData(0, 0, 64, 48).data, 64, 48);
  }

  /** The current video frame at its native size: {width, height, imageData, canvas}, or null. */
  grabFrame() {
    if (!this.live) return null;
    const width = this.video.videoWidth;
    const height = this.video.videoHeight;
    return drawToImageData(this.canvas, this.video, width, height, width, height);
  }

  /**
   * Why a camera frame must not be described, or null: {reason: 'black'|'frozen', message}
   * (frame-check.js). Call with the frame from grabFrame() before sending it; the app says the
   * message instead. A frozen picture also starts a recovery (resume(): a restart unless frames
   * come back within RESUME_WAIT_MS), which the message tells the user about.
   */
  frameProblem(frame) {
    this.#sample();
    // No current frame at all (the element fell back to metadata only) is as stale as it gets.
    const frozen = !!this.clock && (this.clock.frozen(now()) || this.video.readyState < HAVE_CURRENT_DATA);
    const problem = frameProblem({
      frozen,
      black: !frozen && !!frame && isBlack(frame.imageData.data, frame.width, frame.height),
    });
    if (frozen) this.resume();
    return problem;
  }

  /**
   * For Describe: the current frame, or why it must not be described. Resolves to {frame} (as
   * grabFrame()), {problem: {reason: 'black'|'frozen', message}} (as frameProblem()), or {} when
   * the camera is not live (any more). Unlike grabFrame() + frameProblem(), a black picture is
   * taken again (every 0.1 s, for up to BLACK_RETRY_MS; see there), so a passing black moment is
   * not reported as a covered lens.
   */
  async takeFrame() {
    const t0 = now();
    for (;;) {
      if (!this.live) return {};
      const frame = this.grabFrame();
      const problem = this.frameProblem(frame);
      if (!problem) return { frame };
      if (problem.reason !== 'black' || now() - t0 >= BLACK_RETRY_MS) return { problem };
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** Resolves when the element fires `type`, or after ms. */
function once(target, type, ms) {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      target.removeEventListener(type, done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    target.addEventListener(type, done);
  });
}

/** Resolves true as soon as cond() holds (checked every 50 ms), false after ms. */
function waitFor(cond, ms) {
  return new Promise((resolve) => {
    const t0 = now();
    const check = () => {
      if (cond()) resolve(true);
      else if (now() - t0 >= ms) resolve(false);
      else setTimeout(check, 50);
    };
    check();
  });
}

function drawToImageData(canvas, source, srcWidth, srcHeight, width, height) {
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(source, 0, 0, srcWidth, srcHeight, 0, 0, width, height);
  return { width, height, imageData: ctx.getImageData(0, 0, width, height), canvas };
}

/** Why a picked file could not be used: err.reason is one of the keys of PHOTO_PROBLEMS. */
export class PhotoError extends Error {
  constructor(reason, details = {}) {
    super(reason);
    this.name = 'PhotoError';
    this.reason = reason;
    Object.assign(this, details);
  }
}

const u16be = (b, o) => (b[o] << 8) | b[o + 1];
const u32be = (b, o) => ((b[o] << 24) >>> 0) + (b[o + 1] << 16) + (b[o + 2] << 8) + b[o + 3];
const u16le = (b, o) => b[o] | (b[o + 1] << 8);
const u24le = (b, o) => b[o] | (b[o + 1] << 8) | (b[o + 2] << 16);
const i32le = (b, o) => b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24);
const ascii = (b, o, n) => String.fromCharCode(...b.subarray(o, o + n));

/**
 * The picture's size from its file header, without decoding it: {format, width, height}, with
 * `damaged: true` when the file is cut short, or null for a format not recognised here (it is then
 * left to the browser's decoder). PNG, JPEG, GIF, WebP, BMP and HEIC/AVIF (the `ispe` box).
 */
export function imageHeader(b) {
  if (b.length >= 8 && b[0] === 0x89 && ascii(b, 1, 3) === 'PNG') {
    if (b.length < 24 || ascii(b, 12, 4) !== 'IHDR') return { format: 'png', width: 0, height: 0, damaged: true };
    // A PNG ends with its IEND chunk: without it the file was cut short.
    const tail = ascii(b, Math.max(0, b.length - 64), Math.min(64, b.length));
    return { format: 'png', width: u32be(b, 16), height: u32be(b, 20), damaged: !tail.includes('IEND') };
  }
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) {
    // Walk the segments to the first start-of-frame (SOF0–SOF15 but DHT, JPG, DAC).
    let o = 2;
    while (o + 9 < b.length) {
      if (b[o] !== 0xff) return { format: 'jpeg', width: 0, height: 0, damaged: true };
      const marker = b[o + 1];
      if (marker === 0xff) { o++; continue; }
      if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) { o += 2; continue; }
      if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
        return { format: 'jpeg', height: u16be(b, o + 5), width: u16be(b, o + 7) };
      }
      if (marker === 0xd9 || marker === 0xda) break;  // end of image, or scan data before any frame
      o += 2 + u16be(b, o + 2);
    }
    return { format: 'jpeg', width: 0, height: 0, damaged: true };
  }
  if (b.length >= 6 && (ascii(b, 0, 6) === 'GIF87a' || ascii(b, 0, 6) === 'GIF89a')) {
    if (b.length < 10) return { format: 'gif', width: 0, height: 0, damaged: true };
    return { format: 'gif', width: u16le(b, 6), height: u16le(b, 8) };
  }
  if (b.length >= 16 && ascii(b, 0, 4) === 'RIFF' && ascii(b, 8, 4) === 'WEBP') {
    const chunk = ascii(b, 12, 4);
    if (chunk === 'VP8 ' && b.length >= 30) return { format: 'webp', width: u16le(b, 26) & 0x3fff, height: u16le(b, 28) & 0x3fff };
    if (chunk === 'VP8L' && b.length >= 25) {
      const bits = b[21] | (b[22] << 8) | (b[23] << 16) | (b[24] << 24);
      return { format: 'webp', width: 1 + (bits & 0x3fff), height: 1 + ((bits >>> 14) & 0x3fff) };
    }
    if (chunk === 'VP8X' && b.length >= 30) return { format: 'webp', width: 1 + u24le(b, 24), height: 1 + u24le(b, 27) };
    return { format: 'webp', width: 0, height: 0, damaged: true };
  }
  if (b.length >= 2 && b[0] === 0x42 && b[1] === 0x4d) {
    if (b.length < 26) return { format: 'bmp', width: 0, height: 0, damaged: true };
    return { format: 'bmp', width: Math.abs(i32le(b, 18)), height: Math.abs(i32le(b, 22)) };
  }
  if (b.length >= 12 && ascii(b, 4, 4) === 'ftyp') {
    // HEIC / AVIF: the largest image spatial extent ("ispe") property among the first bytes.
    let best = null;
    const end = Math.min(b.length, 1 << 20) - 16;
    for (let o = 8; o < end; o++) {
      if (b[o] === 0x69 && b[o + 1] === 0x73 && b[o + 2] === 0x70 && b[o + 3] === 0x65) {  // "ispe"
        const width = u32be(b, o + 8);
        const height = u32be(b, o + 12);
        if (!best || width * height > best.width * best.height) best = { format: 'heif', width, height };
      }
    }
    return best;
  }
  return null;
}

/**
 * A picked photo decoded to RGBA (EXIF orientation applied), scaled to fit MAX_PHOTO_SIDE.
 * Throws a PhotoError: "empty", "file-too-large", "too-large" (with width, height), "no-pixels",
 * "damaged" or "unreadable". The size is checked from the header before anything is decoded.
 */
export async function decodePhoto(file) {
  if (!file || file.size === 0) throw new PhotoError('empty');
  if (file.size > MAX_PHOTO_BYTES) throw new PhotoError('file-too-large', { bytes: file.size });
  const head = imageHeader(new Uint8Array(await file.slice(0, Math.min(file.size, 1 << 20)).arrayBuffer()));
  if (head && file.size > 1 << 20 && head.format === 'png') {
    // Only the first MiB was read: look for IEND at the real end of the file.
    const tail = new Uint8Array(await file.slice(file.size - 64).arrayBuffer());
    head.damaged = !ascii(tail, 0, tail.length).includes('IEND');
  }
  if (head) checkSize(head.width, head.height, head);
  let bitmap;
  try {
    try {
      bitmap = await createImageBitmap(file, { imageOrientation: 'from-image' });
    } catch (err) {
      if (err && err.name === 'InvalidStateError') throw err;  // undecodable: not an options problem
      // Safari before 17 rejects the options bag; a plain decode still applies EXIF there.
      bitmap = await createImageBitmap(file);
    }
  } catch {
    throw new PhotoError(head ? 'damaged' : 'unreadable', head ? { format: head.format } : {});
  }
  try {
    checkSize(bitmap.width, bitmap.height, null);
    const scale = Math.min(1, MAX_PHOTO_SIDE / Math.max(bitmap.width, bitmap.height));
    const width = Math.max(1, Math.round(bitmap.width * scale));
    const height = Math.max(1, Math.round(bitmap.height * scale));
    return drawToImageData(document.createElement('canvas'), bitmap, bitmap.width, bitmap.height, width, height);
  } finally {
    bitmap.close();
  }
}

function checkSize(width, height, head) {
  if (head && head.damaged) throw new PhotoError('damaged', { format: head.format });
  if (!width || !height) throw new PhotoError('no-pixels', { width, height });
  if (width > MAX_PHOTO_DIMENSION || height > MAX_PHOTO_DIMENSION || width * height > MAX_PHOTO_PIXELS) {
    throw new PhotoError('too-large', { width, height });
  }
}
