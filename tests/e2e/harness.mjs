// What the e2e scripts and the browser benches share: the Chromium binary and its flags, a
// headless Chromium (WebGPU on) with a server for one folder and its models, cleaned up however
// the script ends (for the standalone scripts: pkg-example.mjs, wasm-memory.mjs, benches/web/),
// the model worker's {type:"stats"} answer, and a median.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { start } from './server.mjs';

/** The Chromium binary: $CHROMIUM, else Debian's. */
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

/**
 * The headless Chromium flags every launch in tests/e2e and benches/web starts from: the new
 * headless mode; no sandbox (Chromium will not start as root without it); none of Chromium's own
 * traffic (background networking, component updates, sync) and no QUIC; no first-run UI; shared
 * memory in /tmp instead of /dev/shm (small in containers). WebGPU and camera flags are added per use.
 */
export const CHROMIUM_FLAGS = ['--headless=new', '--no-sandbox', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic', '--disable-dev-shm-usage'];

/** Runs fn({browser, server}) with `dist` served at / and `models` at /models/. */
export async function withBrowser({ dist, models, coi = false }, fn) {
  const server = await start({ dist, models, coi });
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'edgecap-browser-'));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [...CHROMIUM_FLAGS, '--enable-unsafe-webgpu'],
  });
  try {
    return await fn({ browser, server });
  } finally {
    await browser.close();
    await server.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

/** The app's model worker answers {type:"stats"} at once: {wasmMemoryBytes, gpuBuffers}. */
export function workerStats(page, timeoutMs = 30000) {
  return page.evaluate((timeoutMs) => new Promise((resolve, reject) => {
    const w = window.edgecap.worker;
    const t = setTimeout(() => reject(new Error('the worker did not answer {type:"stats"}')), timeoutMs);
    const on = (e) => {
      if (!e.data || e.data.type !== 'stats') return;
      clearTimeout(t);
      w.removeEventListener('message', on);
      resolve(e.data);
    };
    w.addEventListener('message', on);
    w.postMessage({ type: 'stats' });
  }), timeoutMs);
}

/** The median of a list of numbers (the mean of the two middle ones when even); null when empty. */
export function median(xs) {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}
