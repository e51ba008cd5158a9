// Is the camera's picture worth describing? Two ways it is not, both seen on iOS:
// - black: in the background WebKit mutes the capture track and keeps sending black frames
//   (WebKit PR 32807); a lens covered by a finger or a pocket looks the same.
// - frozen: no new frame has come for a while (a stalled or interrupted camera), so the picture on
//   screen is an old one. "New" means a frame the camera delivered, not different pixels: a
//   still scene (or Chromium's fake camera looping one .y4m picture) gives identical frames that
//   are all fresh.
// Pure functions: camera.js feeds them pixels and times; tests/web/frame-check.test.mjs tests them.

/**
 * A pixel is dark at or below this luma (Rec. 601, 0–255): about 9% of full scale, what a screen
 * shows as black. A frame is black when at least BLACK_SHARE of its pixels are dark. A muted camera
 * sends pure black (0) and a covered lens a few units of noise, so both are caught; a dark room
 * with any light in it is not: the lamp, the window or whatever they light is far brighter than 24
 * and covers more than 1% of the view. A scene darker than this everywhere is too dark to describe,
 * and the message says so.
 */
export const BLACK_LUMA = 24;
export const BLACK_SHARE = 0.99;
/** Pixels looked at per frame (a grid): plenty for a share, cheap on a 12 MP photo-sized frame. */
const SAMPLES = 4096;

/** Whether an RGBA frame (Uint8ClampedArray or Uint8Array) is (near) all black. */
export function isBlack(rgba, width, height) {
  if (!width || !height || rgba.length < width * height * 4) return true;
  const step = Math.max(1, Math.floor(Math.sqrt((width * height) / SAMPLES)));
  const start = step >> 1;
  let total = 0;
  let dark = 0;
  for (let y = start; y < height; y += step) {
    for (let x = start, i = (y * width + start) * 4; x < width; x += step, i += step * 4) {
      const luma = (rgba[i] * 77 + rgba[i + 1] * 150 + rgba[i + 2] * 29) >> 8;
      total++;
      if (luma <= BLACK_LUMA) dark++;
    }
  }
  return dark >= BLACK_SHARE * total;
}

/**
 * No new frame for this long means the picture is frozen. A live camera gives 15–30 frames a
 * second, and even a rate lowered for dim light gives several in 1.5 s; yet it is short enough
 * that a tap soon after a stall is not described. (The e2e fake camera runs at 10 a second.)
 */
export const FROZEN_MS = 1500;

/** When the camera last delivered a frame. Times are milliseconds from any one clock. */
export class FrameClock {
  /** The start counts as a frame: a new stream has no old picture to show (an empty video draws black). */
  constructor(now) {
    this.last = now;
  }

  frame(now) {
    if (now > this.last) this.last = now;
  }

  frozen(now) {
    return now - this.last > FROZEN_MS;
  }

  /** Whether a frame came at or after `t` (resume() waits for one). */
  seenSince(t) {
    return this.last >= t;
  }
}

/** What the app says instead of a description (it stays ready; Describe works again at once). */
export const FRAME_PROBLEMS = {
  black: {
    reason: 'black',
    message: 'The camera picture is black, so nothing was described: the lens may be covered, or it is too dark. Point the camera at something with some light and press Describe again.',
  },
  frozen: {
    reason: 'frozen',
    message: 'The camera picture has stopped updating, so nothing was described. The camera is being restarted; press Describe again in a moment.',
  },
};

/** The problem with a frame, or null: frozen first (a stale picture is the cause), then black. */
export function frameProblem({ frozen, black }) {
  if (frozen) return FRAME_PROBLEMS.frozen;
  if (black) return FRAME_PROBLEMS.black;
  return null;
}
