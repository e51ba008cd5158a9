// Test-time fixtures (nothing large is committed): the tiny model as q8_0 GGUF made by the CLI,
// corrupt copies of it, and a static fake-camera video (.y4m) made from a fixture PNG.
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { decodePng, encodePng, craftPng } from './png.mjs';

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

/**
 * A GGUF v3 header by hand: magic "GGUF", u32 version 3, u64 tensor_count, u64 kv_count, then
 * `rest` (tensor infos, ...) and `pad` zero bytes. For models that lie about their contents.
 */
export function ggufBytes({ tensorCount, kvCount, rest = Buffer.alloc(0), pad = 0 }) {
  const head = Buffer.alloc(24);
  head.write('GGUF', 0, 'latin1');
  head.writeUInt32LE(3, 4);
  head.writeBigUInt64LE(BigInt(tensorCount), 8);
  head.writeBigUInt64LE(BigInt(kvCount), 16);
  return Buffer.concat([head, rest, Buffer.alloc(pad)]);
}

/** One GGUF tensor info: u64 name length, name, u32 n_dims, u64 dims..., u32 type, u64 offset. */
function tensorInfo(name, dims, type = 0, offset = 0n) {
  const n = Buffer.from(name, 'utf8');
  const b = Buffer.alloc(8 + n.length + 4 + 8 * dims.length + 4 + 8);
  let o = b.writeBigUInt64LE(BigInt(n.length), 0);
  o += n.copy(b, o);
  o = b.writeUInt32LE(dims.length, o);
  for (const d of dims) o = b.writeBigUInt64LE(BigInt(d), o);
  o = b.writeUInt32LE(type, o);
  b.writeBigUInt64LE(BigInt(offset), o);
  return b;
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

  // Models that lie (tests/e2e run.mjs, scenario bad-models): absurd counts must fail fast, not
  // allocate for 2^60 entries; a 0-byte file.
  const bad = {
    'absurd-tensor-count.gguf': ggufBytes({ tensorCount: 1n << 60n, kvCount: 0, pad: 4096 }),
    'absurd-kv-count.gguf': ggufBytes({ tensorCount: 0, kvCount: 1n << 60n, pad: 4096 }),
    // One tensor of 2^32 x 2^32 x 2^32 x 2^32 f32 values (far past 2^64 bytes), data "at" offset 0.
    'absurd-dims.gguf': ggufBytes({
      tensorCount: 1, kvCount: 0,
      rest: tensorInfo('vision_model.embeddings.patch_embedding.weight', [1n << 32n, 1n << 32n, 1n << 32n, 1n << 32n]),
      pad: 4096,
    }),
    'empty.gguf': Buffer.alloc(0),
  };
  const badModels = {};
  for (const [name, bytes] of Object.entries(bad)) {
    badModels[name] = path.join(modelsDir, name);
    fs.writeFileSync(badModels[name], bytes);
  }

  // Photos that can't be described (scenario bad-photos), and a 1x1 one that can.
  const photosDir = path.join(dir, 'photos');
  fs.mkdirSync(photosDir, { recursive: true });
  const goodPhoto = fs.readFileSync(path.join(REPO, 'tests/fixtures/images/synthetic_160x120.png'));
  const photoBytes = {
    'empty.png': Buffer.alloc(0),
    'not-an-image.txt': Buffer.from('This is a text file, not a picture.\n'.repeat(40)),
    'truncated.png': goodPhoto.subarray(0, Math.floor(goodPhoto.length * 0.6)),
    'zero-size.png': craftPng(0, 0),
    // A decompression bomb: its header claims 100000 x 100000 pixels (30 GB of RGB), in 1 KB.
    'bomb-100000x100000.png': craftPng(100000, 100000, Buffer.alloc(1 << 20)),
    'one-pixel.png': encodePng(1, 1, Buffer.from([200, 40, 40, 255])),
  };
  const photos = {};
  for (const [name, bytes] of Object.entries(photoBytes)) {
    photos[name] = path.join(photosDir, name);
    fs.writeFileSync(photos[name], bytes);
  }

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
    badModels,
    photos,
    y4m,
    cameraPng: png,
    photoPng: path.join(REPO, 'tests/fixtures/images/synthetic_160x120.png'),
  };
}
