// Scene-change test for automatic mode: a 32×24 greyscale thumbnail, compared by mean absolute
// difference with the thumbnail of the last frame that was captioned. Small enough to run every
// few seconds on a phone without touching the model; coarse enough that sensor noise and a
// trembling hand stay under the threshold while turning to face something else does not.
export const THUMB_WIDTH = 32;
export const THUMB_HEIGHT = 24;
/** Mean absolute grey difference (0–255) above which the view counts as changed. */
export const CHANGE_THRESHOLD = 8;

let canvas = null;
let ctx = null;

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
  const rgba = ctx.getImageData(0, 0, THUMB_WIDTH, THUMB_HEIGHT).data;
  const grey = new Uint8Array(THUMB_WIDTH * THUMB_HEIGHT);
  for (let i = 0, j = 0; j < grey.length; i += 4, j++) {
    grey[j] = (rgba[i] * 77 + rgba[i + 1] * 150 + rgba[i + 2] * 29) >> 8;  // Rec. 601 luma
  }
  return grey;
}

export function meanAbsDiff(a, b) {
  if (!a || !b || a.length !== b.length) return Infinity;
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i] - b[i]);
  return sum / a.length;
}

export function changed(current, previous, threshold = CHANGE_THRESHOLD) {
  return meanAbsDiff(current, previous) > threshold;
}
