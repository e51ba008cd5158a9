// Runs the edgecap CLI on a frame (RGBA) to get the reference caption for the same pixels.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { execFile } from 'node:child_process';
import { encodePng } from './png.mjs';

const cache = new Map();
let xdg = null;

function runtimeDir() {
  if (!xdg) {
    xdg = fs.mkdtempSync(path.join(os.tmpdir(), 'e2e-xdg-'));
    fs.chmodSync(xdg, 0o700);
  }
  return xdg;
}

/**
 * Captions `frame` ({width, height, rgba}) with the CLI. backend: 'cpu' | 'gpu'; args: more CLI
 * arguments (e.g. ['--gpu-limits', 'default']).
 * Returns the parsed JSON line ({caption, token_ids, backend, adapter, ...}) plus `png` (the file written).
 */
export async function cliCaption({ cli, model, frame, backend, workDir, args = [] }) {
  const png = encodePng(frame.width, frame.height, frame.rgba);
  const key = crypto.createHash('sha1').update(png).update(model).update(backend).update(args.join('\0')).digest('hex');
  if (cache.has(key)) return cache.get(key);
  fs.mkdirSync(workDir, { recursive: true });
  const file = path.join(workDir, `frame-${key.slice(0, 12)}.png`);
  fs.writeFileSync(file, png);
  const out = await new Promise((resolve, reject) => {
    execFile(
      cli,
      ['caption', '--model', model, '--backend', backend, ...args, '--json', file],
      { env: { ...process.env, XDG_RUNTIME_DIR: runtimeDir() }, timeout: 120000, maxBuffer: 1 << 20 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`edgecap caption --backend ${backend} ${args.join(' ')} failed: ${err.message}\n${stderr}`));
        else resolve(stdout);
      },
    );
  });
  const line = out.trim().split('\n').filter(Boolean).pop();
  const res = { ...JSON.parse(line), png: file };
  cache.set(key, res);
  return res;
}

/** Compares a browser result ({caption, tokenIds?}) with the CLI's; returns null when equal, else a description. */
export function compareCaptions(browser, cli) {
  const problems = [];
  if (browser.caption !== cli.caption) {
    problems.push(`caption differs: browser ${JSON.stringify(browser.caption)} vs CLI ${JSON.stringify(cli.caption)}`);
  }
  if (Array.isArray(browser.tokenIds) && Array.isArray(cli.token_ids)) {
    let a = browser.tokenIds;
    let b = cli.token_ids;
    // Either side may or may not carry the bos token ([DEC] = 30522).
    if (a.length === b.length + 1 && a[0] === 30522) a = a.slice(1);
    if (b.length === a.length + 1 && b[0] === 30522) b = b.slice(1);
    const n = Math.max(a.length, b.length);
    for (let i = 0; i < n; i++) {
      if (a[i] !== b[i]) {
        problems.push(`token ids differ from index ${i}: browser [${a.join(',')}] vs CLI [${b.join(',')}]`);
        break;
      }
    }
  }
  return problems.length ? problems.join('; ') : null;
}
