// The back camera as a <video>, and frames from it (or from a photo) as RGBA at their own size.

const CONSTRAINTS = { video: { facingMode: 'environment', width: { ideal: 1280 } }, audio: false };
// Photos are scaled down to this on their long side: a 12–48 MP photo as RGBA is 48–190 MB, more
// than iOS gives a canvas, and the model looks at 384×384 anyway.
const MAX_PHOTO_SIDE = 2048;

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

/** A picked photo decoded to RGBA (EXIF orientation applied), scaled to fit MAX_PHOTO_SIDE. */
export async function decodePhoto(file) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(file, { imageOrientation: 'from-image' });
  } catch {
    // Safari before 17 rejects the options bag; a plain decode still applies EXIF there.
    bitmap = await createImageBitmap(file);
  }
  try {
    const scale = Math.min(1, MAX_PHOTO_SIDE / Math.max(bitmap.width, bitmap.height));
    const width = Math.max(1, Math.round(bitmap.width * scale));
    const height = Math.max(1, Math.round(bitmap.height * scale));
    return drawToImageData(document.createElement('canvas'), bitmap, bitmap.width, bitmap.height, width, height);
  } finally {
    bitmap.close();
  }
}
