// What the small standalone scripts (pkg-example.mjs, wasm-memory.mjs) share: `--name value`
// arguments, and a headless Chromium (WebGPU on) with a server for one folder and its models,
// cleaned up however the script ends.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { start } from './server.mjs';

/** Headless Chromium flags the standalone scripts share (RECIPES.md); WebGPU and camera flags are added per use. */
export const CHROMIUM_FLAGS = ['--headless=new', '--no-sandbox', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic', '--disable-dev-shm-usage'];

export function namedArgs(argv = process.argv.slice(2)) {
  const out = {};
  for (let i = 0; i < argv.length; i++) if (argv[i].startsWith('--')) out[argv[i].slice(2)] = argv[i + 1];
  return out;
}

/** Runs fn({browser, server}) with `dist` served at / and `models` at /models/. */
export async function withBrowser({ dist, models, coi = false }, fn) {
  const server = await start({ dist, models, coi });
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'edgecap-browser-'));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
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
