// Synthetic camera views for the automatic-mode tests (frame-diff, auto-mode): pictures reduced to
// 32×24 grey thumbnails by block averaging, as the browser's downscale does. Not a test file.
import { THUMB_WIDTH, THUMB_HEIGHT } from '../../www/js/frame-diff.js';

/** Deterministic pseudo-random numbers in [0, 1) (mulberry32). */
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The thumbnail of a W×H camera picture of scene(x, y) (grey 0–255) seen from `offset` pixels to
 * the right, with per-pixel sensor noise of ±noise.
 */
export function cameraThumb(scene, { W = 320, H = 240, offset = 0, noise = 0, seed = 1 } = {}) {
  const r = rng(seed);
  const bw = W / THUMB_WIDTH;
  const bh = H / THUMB_HEIGHT;
  const out = new Uint8Array(THUMB_WIDTH * THUMB_HEIGHT);
  for (let ty = 0; ty < THUMB_HEIGHT; ty++) {
    for (let tx = 0; tx < THUMB_WIDTH; tx++) {
      let sum = 0;
      for (let y = ty * bh; y < (ty + 1) * bh; y++) {
        for (let x = tx * bw; x < (tx + 1) * bw; x++) {
          sum += Math.min(255, Math.max(0, scene(x + offset, y) + (r() * 2 - 1) * noise));
        }
      }
      out[ty * THUMB_WIDTH + tx] = Math.round(sum / (bw * bh));
    }
  }
  return out;
}

/** A room: a bright window, a dark sofa, a textured wall and floor. */
export const room = (x, y) => (x % 400 > 250 && y < 120 ? 220 : y > 150 && x % 400 < 180 ? 40 : 110 + 30 * Math.sin(x / 9) * Math.sin(y / 7));
/** Somewhere else (the user turned round). */
export const otherRoom = (x, y) => (y < 100 ? 60 : 200 - ((x + y) % 50));
/** A dim corridor, low in contrast: walking along it changes the view a little at every step. */
export const corridor = (x, y) => 120 + 0.35 * (room(x, y) - 120);

/**
 * Chromium's fake camera without a file (--use-fake-device-for-media-stream): on a still green
 * picture, a sector drawn from angle 0 to fmod(600°/s × t, 361°), so it sweeps round every 601.7 ms,
 * radius a quarter of the height (PacmanFramePainter::DrawPacman, kPacmanAngularVelocity = 600, in
 * chromium/chromium media/capture/video/fake_video_capture_device.cc; the clock text and the corner
 * gradient squares it also draws are left out). The thumbnail at time tMs. Its contrast (135 on 70)
 * gives the ~9.5 grey levels measured between an empty and a full sector in headless Chromium.
 */
const fakeCache = new Map();
export function fakeCameraThumb(tMs) {
  const deg = Math.round((0.6 * tMs) % 361);  // to the degree: the picture only changes that much
  if (!fakeCache.has(deg)) fakeCache.set(deg, fakeCameraPicture(deg / 360));
  return fakeCache.get(deg);
}

function fakeCameraPicture(sweep, W = 160, H = 120) {
  const cx = W / 2;
  const cy = H / 2;
  const R = H / 4;
  const scene = (x, y) => {
    const dx = x - cx;
    const dy = y - cy;
    if (dx * dx + dy * dy > R * R) return 70;
    const a = (Math.atan2(dx, -dy) / (2 * Math.PI) + 1) % 1;
    return a <= sweep ? 135 : 70;
  };
  return cameraThumb(scene, { W, H });
}

/** A scene of its own for each seed: 40×40-pixel patches of random grey (a new place each time). */
export function placeScene(seed) {
  const r = rng(seed * 7919 + 1);
  const patches = Array.from({ length: 64 }, () => 30 + r() * 200);
  return (x, y) => patches[(Math.floor(x / 40) % 8) + 8 * (Math.floor(y / 40) % 8)];
}
