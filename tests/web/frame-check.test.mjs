// The camera picture checks (www/js/frame-check.js): black frames (a muted or covered camera) and
// frozen ones (no new frame delivered), on synthetic pictures and a fake clock.
import test from 'node:test';
import assert from 'node:assert/strict';
import { isBlack, BLACK_LUMA, FrameClock, FROZEN_MS, frameProblem, FRAME_PROBLEMS } from '../../www/js/frame-check.js';

/** A width×height RGBA picture filled by px(x, y) → [r, g, b]. */
function picture(width, height, px) {
  const rgba = new Uint8ClampedArray(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const [r, g, b] = px(x, y);
      const i = (y * width + x) * 4;
      rgba[i] = r; rgba[i + 1] = g; rgba[i + 2] = b; rgba[i + 3] = 255;
    }
  }
  return rgba;
}

/** Deterministic noise in [0, n). */
const noise = (x, y, n) => ((x * 7919 + y * 104729) % 97) % n;

test('a muted camera (pure black) and a covered lens (black with sensor noise) are black', () => {
  assert.equal(isBlack(picture(1280, 720, () => [0, 0, 0]), 1280, 720), true);
  assert.equal(isBlack(picture(640, 480, (x, y) => { const v = noise(x, y, 12); return [v, v, v + 2]; }), 640, 480), true);
  // A few hot pixels in the dark do not make it a picture.
  assert.equal(isBlack(picture(640, 480, (x, y) => (noise(x, y, 97) === 0 && x % 5 === 0 ? [255, 255, 255] : [3, 3, 3])), 640, 480), true);
});

test('transparent pixels (a video with no frame yet, drawn to a canvas) are black', () => {
  assert.equal(isBlack(new Uint8ClampedArray(320 * 240 * 4), 320, 240), true);
});

test('a dark room with some light passes: a lamp, or a dimly lit wall', () => {
  // Almost all black, with a small lamp (a 40-pixel disc, ~1.6% of the view).
  const lamp = picture(640, 480, (x, y) => ((x - 500) ** 2 + (y - 100) ** 2 < 40 * 40 ? [255, 230, 160] : [4, 4, 6]));
  assert.equal(isBlack(lamp, 640, 480), false);
  // Uniformly dim, just above the threshold (luma ~30): dark, but there is something to see.
  const dim = picture(640, 480, (x, y) => { const v = 30 + noise(x, y, 6); return [v, v, v]; });
  assert.equal(isBlack(dim, 640, 480), false);
});

test('the threshold sits at BLACK_LUMA: every pixel at it is black, one step above is not', () => {
  assert.equal(isBlack(picture(64, 48, () => [BLACK_LUMA, BLACK_LUMA, BLACK_LUMA]), 64, 48), true);
  assert.equal(isBlack(picture(64, 48, () => [BLACK_LUMA + 2, BLACK_LUMA + 2, BLACK_LUMA + 2]), 64, 48), false);
});

test('a normal picture is not black; an empty or short buffer is', () => {
  assert.equal(isBlack(picture(640, 480, (x, y) => [x % 256, y % 256, 128]), 640, 480), false);
  assert.equal(isBlack(new Uint8ClampedArray(0), 0, 0), true);
  assert.equal(isBlack(new Uint8ClampedArray(10), 640, 480), true);
});

test('frozen means no new frame for over FROZEN_MS, whatever the pixels', () => {
  const clock = new FrameClock(1000);             // the start counts as a frame
  assert.equal(clock.frozen(1000 + FROZEN_MS), false);
  assert.equal(clock.frozen(1000 + FROZEN_MS + 1), true);
  // Identical frames of a still scene still arrive: each one is fresh.
  for (let t = 1100; t <= 5000; t += 100) clock.frame(t);
  assert.equal(clock.frozen(5000 + FROZEN_MS), false);
  assert.equal(clock.frozen(5000 + FROZEN_MS + 1), true);
  // A stall, then frames again.
  clock.frame(9000);
  assert.equal(clock.frozen(9100), false);
});

test('a frame noted late with an older time does not move the clock back', () => {
  const clock = new FrameClock(0);
  clock.frame(2000);
  clock.frame(1500);
  assert.equal(clock.last, 2000);
  assert.equal(clock.seenSince(1999), true);
  assert.equal(clock.seenSince(2001), false);
});

test('frozen is reported before black; a good frame has no problem; messages say what to do', () => {
  assert.equal(frameProblem({ frozen: true, black: true }), FRAME_PROBLEMS.frozen);
  assert.equal(frameProblem({ frozen: false, black: true }), FRAME_PROBLEMS.black);
  assert.equal(frameProblem({ frozen: false, black: false }), null);
  assert.equal(FRAME_PROBLEMS.black.reason, 'black');
  assert.equal(FRAME_PROBLEMS.frozen.reason, 'frozen');
  assert.match(FRAME_PROBLEMS.black.message, /black.*nothing was described/i);
  assert.match(FRAME_PROBLEMS.frozen.message, /stopped updating.*nothing was described/i);
});
