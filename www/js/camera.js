// The back camera as a <video>, and frames from it (or from a photo) as RGBA at their own size.

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
  unavailable: 'This browser gives no camera access here. Take a photo or choose one from your library to describe it.',
  error: 'The camera could not start. Choose “Try the camera again”, or take a photo to describe it.',
};

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

export class Camera {
  /** onChange({live, reason, message}) is called when the camera starts or stops. */
  constructor(video, onChange) {
    this.video = video;
    this.onChange = onChange;
    this.stream = null;
    this.reason = null;
    this.starting = null;
    this.canvas = document.createElement('canvas');
  }

  get live() {
    const track = this.stream && this.stream.getVideoTracks()[0];
    return !!track && track.readyState === 'live' && this.video.videoWidth > 0;
  }

  start() {
    if (!this.starting) this.starting = this.#start().finally(() => { this.starting = null; });
    return this.starting;
  }

  async #start() {
    if (this.live) return true;
    this.stop();
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return this.#fail('unavailable');
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia(CONSTRAINTS);
    } catch (err) {
      return this.#fail(reasonOf(err));
    }
    this.stream = stream;
    const track = stream.getVideoTracks()[0];
    // iOS ends the track when another app takes the camera or a call comes in.
    track.addEventListener('ended', () => {
      if (this.stream === stream) this.#fail('ended');
    });
    this.video.srcObject = stream;
    try {
      await this.video.play();
    } catch {
      // autoplay of a muted, inline video is allowed; a failure here shows as no frames below
    }
    if (!this.video.videoWidth) {
      await new Promise((resolve) => {
        const done = () => resolve();
        this.video.addEventListener('loadedmetadata', done, { once: true });
        setTimeout(done, 3000);
      });
    }
    if (!this.live) return this.#fail('error');
    this.reason = null;
    this.onChange({ live: true, reason: null, message: '' });
    return true;
  }

  #fail(reason) {
    this.stop();
    this.reason = reason;
    this.onChange({ live: false, reason, message: MESSAGES[reason] || MESSAGES.error });
    return false;
  }

  stop() {
    if (this.stream) {
      for (const track of this.stream.getTracks()) track.stop();
    }
    this.stream = null;
    this.video.srcObject = null;
  }

  /** The current video frame at its native size: {width, height, imageData, canvas}, or null. */
  grabFrame() {
    if (!this.live) return null;
    const width = this.video.videoWidth;
    const height = this.video.videoHeight;
    return drawToImageData(this.canvas, this.video, width, height, width, height);
  }
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
