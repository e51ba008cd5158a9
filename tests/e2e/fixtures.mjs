// Test-time fixtures (nothing large is committed): the tiny model as q8_0 GGUF made by the CLI,
// corrupt copies of it, and a static fake-camera video (.y4m) made from a fixture PNG.
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { decodePng } from './png.mjs';

export const REPO = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');

/** RGBA8 -> one YUV 4:2:0 frame (BT.601 limited range, chroma averaged over 2x2; even sizes). */
export function rgbaToI420(width, height, rgba) {
  const ySize = width * height;
  const cw = width >> 1;
  const ch = height >> 1;
  const out = Buffer.alloc(ySize + 2 * cw * ch);
  const clamp = (v) => (v < 0 ? 0 : v > 255 ? 255 : Math.round(v));
  for (let i = 0; i < ySize; i++) {
    const r = rgba[i * 4], g = rgba[i * 4 + 1], b = rgba[i * 4 + 2];
    out[i] = clamp(16 + 0.256788 * r + 0.504129 * g + 0.097906 * b);
  }
  for (let y = 0; y < ch; y++) {
    for (let x = 0; x < cw; x++) {
      let r = 0, g = 0, b = 0;
      for (const [dx, dy] of [[0, 0], [1, 0], [0, 1], [1, 1]]) {
        const i = ((2 * y + dy) * width + 2 * x + dx) * 4;
        r += rgba[i];
        g += rgba[i + 1];
        b += rgba[i + 2];
      }
      r /= 4;
      g /= 4;
      b /= 4;
      out[ySize + y * cw + x] = clamp(128 - 0.148223 * r - 0.290993 * g + 0.439216 * b);
      out[ySize + cw * ch + y * cw + x] = clamp(128 + 0.439216 * r - 0.367788 * g - 0.071427 * b);
    }
  }
  return out;
}

/** Writes a YUV4MPEG2 file with `frames` identical frames of the PNG. */
export function pngToY4m(pngPath, y4mPath, { frames = 5, fps = 10 } = {}) {
  const { width, height, rgba } = decodePng(fs.readFileSync(pngPath));
  const frame = rgbaToI420(width, height, rgba);
  const parts = [Buffer.from(`YUV4MPEG2 W${width} H${height} F${fps}:1 Ip A1:1 C420jpeg\n`, 'latin1')];
  for (let i = 0; i < frames; i++) parts.push(Buffer.from('FRAME\n', 'latin1'), frame);
  fs.writeFileSync(y4mPath, Buffer.concat(parts));
  return { width, height };
}

/** The tiny random-weight test model as a GGUF of `dtype` at `out` (kept when already there). */
function convertTiny(cli, dtype, out) {
  if (!fs.existsSync(out)) {
    const model = path.join(REPO, 'tests/fixtures/models/blip-tiny-random');
    const tokenizer = path.join(REPO, 'tests/fixtures/models/tokenizer.json');
    execFileSync(cli, ['convert', '--from', model, '--to', out, '--dtype', dtype, '--tokenizer', tokenizer],
      { stdio: ['ignore', 'pipe', 'pipe'] });
  }
  return out;
}

/** Makes every fixture under `dir` (created if missing). Returns their paths. */
export function makeFixtures({ cli, dir }) {
  fs.mkdirSync(dir, { recursive: true });
  const modelsDir = path.join(dir, 'models');
  fs.mkdirSync(modelsDir, { recursive: true });
  const model = convertTiny(cli, 'q8_0', path.join(modelsDir, 'tiny-q8_0.gguf'));
  // The same model in f32, for comparing the app's CPU path with the CLI's (see run.mjs).
  const modelF32 = convertTiny(cli, 'f32', path.join(modelsDir, 'tiny-f32.gguf'));
  const good = fs.readFileSync(model);
  // Truncated in the middle of the tensor data (the header and tensor table stay intact).
  const truncated = path.join(modelsDir, 'corrupt-truncated.gguf');
  fs.writeFileSync(truncated, good.subarray(0, Math.floor(good.length * 0.6)));
  // Header broken: magic "GGUF" inverted and the version word garbled.
  const header = path.join(modelsDir, 'corrupt-header.gguf');
  const h = Buffer.from(good);
  for (let i = 0; i < 8; i++) h[i] ^= 0xff;
  fs.writeFileSync(header, h);

  const png = path.join(REPO, 'tests/fixtures/images/synthetic_640x480.png');
  const y4m = path.join(dir, 'camera-640x480.y4m');
  if (!fs.existsSync(y4m)) pngToY4m(png, y4m);
  return {
    dir,
    modelsDir,
    model,
    modelF32,
    modelSize: good.length,
    corruptTruncated: truncated,
    corruptHeader: header,
    y4m,
    cameraPng: png,
    photoPng: path.join(REPO, 'tests/fixtures/images/synthetic_160x120.png'),
  };
}
