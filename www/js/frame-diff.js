// Scene-change measures for automatic mode: a 32×24 greyscale thumbnail of the view, and the mean
// absolute difference between two of them (0–255). Small enough to run several times a second on
// a phone without touching the model; coarse enough that sensor noise and a trembling hand stay
// far below the thresholds while turning to face something else, or walking, does not.
// The DOM part is thumbnail(); everything else is pure (tests/web/frame-diff.test.mjs).
export const THUMB_WIDTH = 32;
export const THUMB_HEIGHT = 24;
/**
 * The view counts as changed (a new scene: the user turned to something else) when it differs from
 * the last view described by more than this mean absolute grey difference.
 */
export const CHANGE_THRESHOLD = 8;
/**
 * The view counts as moving when two looks in a row differ by more than this. Averaging ~1,200
 * camera pixels into each thumbnail pixel leaves sensor noise well under 1 grey level, and a hand
 * holding the phone still shifts the view by a fraction of a thumbnail pixel; walking, panning or
 * something crossing the view gives several levels. (Chromium's moving fake camera, a sweeping
 * sector on a still picture, measured 3–9 between looks 400 ms apart.)
 */
export const MOTION_THRESHOLD = 2.5;

let canvas = null;
let ctx = null;

/** Rec. 601 luma of RGBA pixels (Uint8Array/Uint8ClampedArray), one byte per pixel. Pure. */
export function greyOf(rgba) {
  const grey = new Uint8Array(rgba.length >> 2);
  for (let i = 0, j = 0; j < grey.length; i += 4, j++) {
    grey[j] = (rgba[i] * 77 + rgba[i + 1] * 150 + rgba[i + 2] * 29) >> 8;
  }
  return grey;
}

/** Greyscale thumbnail (Uint8Array, 32×24) of a video, canvas or image; null if it has no pixels yet. */
export function thumbnail(source, width, height) {
  if (!width || !height) return null;
  if (!canvas) {
    canvas = document.createElement('canvas');
    canvas.width = THUMB_WIDTH;
    canvas.height = THUMB_HEIGHT;
    ctx = canvas.getContext('2d', { willReadFrequently: true });
    ctx.imageSmoothingEnabled = true;
    ctx.imageSmoothingQuality = 'medium';
  }
  ctx.drawImage(source, 0, 0, width, height, 0, 0, THUMB_WIDTH, THUMB_HEIGHT);
  return greyOf(ctx.getImageData(0, 0, THUMB_WIDTH, THUMB_HEIGHT).data);
}

/** Mean absolute difference of two thumbnails; Infinity when either is missing or they differ in size. */
export function meanAbsDiff(a, b) {
  if (!a || !b || a.length !== b.length) return Infinity;
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i] - b[i]);
  return sum / a.length;
}

export function changed(current, previous, threshold = CHANGE_THRESHOLD) {
  return meanAbsDiff(current, previous) > threshold;
}
