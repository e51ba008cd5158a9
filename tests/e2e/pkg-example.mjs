// pkg/example.html, the package's example page, used as a person would: type the model URL,
// press Load, pick an image; the caption must be the CLI's for the same image and backend. Then
// Engine.captionWith's options and Engine.load's GPU options (LoadOptions) through the module.
//   node tests/e2e/pkg-example.mjs --pkg pkg --model tiny-q8_0.gguf --cpu-model tiny-f32.gguf --cli target/release/edgecap
// The CPU comparison uses an f32 model: with q8_0, wasm and the native AVX-512 kernels round
// activations to int8 after sums taken in different orders, which flips tokens of this random
// model (its top-2 margins are 0.004-0.017; see tests/e2e/run.mjs).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { REPO } from './fixtures.mjs';
import { withBrowser } from './harness.mjs';

const { values: args } = parseArgs({
  options: { pkg: { type: 'string' }, model: { type: 'string' }, 'cpu-model': { type: 'string' }, cli: { type: 'string' } },
});
const model = path.resolve(args.model);
const cpuModel = path.resolve(args['cpu-model'] || args.model);
if (path.dirname(cpuModel) !== path.dirname(model)) throw new Error('--model and --cpu-model must be in one folder');
const image = path.join(REPO, 'tests/fixtures/images/synthetic_160x120.png');
let failures = 0;
await withBrowser({ dist: path.resolve(args.pkg || 'pkg'), models: path.dirname(model) }, async ({ browser, server }) => {
  for (const [backend, cliBackend, file] of [['cpu', 'cpu', cpuModel], ['webgpu', 'gpu', model]]) {
    const page = await browser.newPage();
    await page.goto(`${server.url}/example.html`);
    await page.waitForFunction(() => document.body.dataset.state === 'setup');
    await page.fill('#url', `models/${path.basename(file)}`);
    await page.selectOption('#backend', backend);
    await page.click('#load');
    await page.waitForFunction(() => ['ready', 'error'].includes(document.body.dataset.state), null, { timeout: 120000 });
    const status = await page.textContent('#status');
    await page.setInputFiles('#image', image);
    await page.waitForFunction(() => document.querySelector('#caption').textContent.length > 0, null, { timeout: 300000 });
    const got = await page.textContent('#caption');
    const cli = JSON.parse(execFileSync(args.cli, ['caption', '--model', file, '--backend', cliBackend, '--json', image]));
    const ok = got === cli.caption;
    failures += ok ? 0 : 1;
    console.log(`${ok ? 'ok' : 'FAIL'} pkg example on ${backend} (${path.basename(file)}): "${got}" ${ok ? '=' : '!='} CLI "${cli.caption}" (${status.trim()})`);
    await page.close();
  }

  // Engine.captionWith: forced token counts (the speed benchmarks rely on them) equal the CLI's
  // --min-tokens/--max-tokens, and options it cannot honour are refused with a code.
  const page = await browser.newPage();
  await page.goto(`${server.url}/example.html`);
  await page.waitForFunction(() => document.body.dataset.state === 'setup');
  const got = await page.evaluate(async ({ url, png }) => {
    const { Engine } = await import('./edgecap.js');
    const engine = await Engine.fromUrl(url, 'cpu');
    const bitmap = await createImageBitmap(new Blob([new Uint8Array(png)], { type: 'image/png' }));
    const ctx = new OffscreenCanvas(bitmap.width, bitmap.height).getContext('2d');
    ctx.drawImage(bitmap, 0, 0);
    const { data, width, height } = ctx.getImageData(0, 0, bitmap.width, bitmap.height);
    const forced = await engine.captionWith(data, width, height, { minTokens: 6, maxTokens: 6 });
    const refused = await engine.captionWith(data, width, height, { minTokens: 3, maxTokens: 2 }).then(() => 'accepted', (e) => e.code);
    engine.free();
    return { ids: forced.tokenIds, timings: Object.keys(forced.timingsMs).join(','), refused };
  }, { url: `models/${path.basename(cpuModel)}`, png: [...fs.readFileSync(image)] });
  const cli = JSON.parse(execFileSync(args.cli, ['caption', '--model', cpuModel, '--backend', 'cpu', '--json', '--min-tokens', '6', '--max-tokens', '6', image]));
  const ok = got.ids.length === 7 && got.ids.join() === cli.token_ids.join() && got.refused === 'unsupported' && got.timings === 'preprocess,vision,decode,total';
  failures += ok ? 0 : 1;
  console.log(`${ok ? 'ok' : 'FAIL'} captionWith {minTokens: 6, maxTokens: 6}: ids [${got.ids}] ${got.ids.join() === cli.token_ids.join() ? '=' : '!='} CLI [${cli.token_ids}]; min > max refused with code "${got.refused}"; timingsMs {${got.timings}}`);
  await page.close();

  // Engine.load's GPU options (LoadOptions): the effective settings come back as submitEvery and
  // gpuLimits; an adapter whose GPUAdapterInfo.vendor is "apple" gets the Apple default (256)
  // unless submitEvery says otherwise; the CPU has neither; wrong options are refused with a code.
  // Loading only (a SwiftShader caption takes minutes; run.mjs captions with these settings).
  const opts = await browser.newPage();
  await opts.goto(`${server.url}/example.html`);
  await opts.waitForFunction(() => document.body.dataset.state === 'setup');
  const seen = await opts.evaluate(async (url) => {
    const { Engine } = await import('./edgecap.js');
    const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
    const load = async (backend, options) => {
      try {
        const e = await Engine.fromBytes(bytes, backend, undefined, options);
        const got = { submitEvery: e.submitEvery ?? null, gpuLimits: e.gpuLimits ?? null, backend: e.backend };
        e.free();
        return got;
      } catch (err) {
        return { code: err.code || String(err) };
      }
    };
    // Safari on an iPhone: the adapter's info says vendor "apple" (nothing else changes).
    const asApple = async (fn) => {
      const real = Object.getOwnPropertyDescriptor(GPUAdapter.prototype, 'info');
      Object.defineProperty(GPUAdapter.prototype, 'info', {
        configurable: true,
        get() {
          const info = real.get.call(this);
          const copy = {};
          for (const k in info) copy[k] = info[k];
          return { ...copy, vendor: 'apple' };
        },
      });
      try {
        return await fn();
      } finally {
        Object.defineProperty(GPUAdapter.prototype, 'info', real);
      }
    };
    return {
      plain: await load('webgpu'),
      set: await load('webgpu', { submitEvery: 64, gpuLimits: 'default' }),
      apple: await asApple(() => load('webgpu')),
      appleSet: await asApple(() => load('webgpu', { submitEvery: 1024 })),
      cpu: await load('cpu', { submitEvery: 64, gpuLimits: 'default' }),
      badSubmit: await load('cpu', { submitEvery: -1 }),
      badLimits: await load('cpu', { gpuLimits: 'huge' }),
    };
  }, `models/${path.basename(model)}`);
  const want = {
    plain: { submitEvery: null, gpuLimits: 'adapter', backend: 'webgpu' },
    set: { submitEvery: 64, gpuLimits: 'default', backend: 'webgpu' },
    apple: { submitEvery: 256, gpuLimits: 'adapter', backend: 'webgpu' },
    appleSet: { submitEvery: 1024, gpuLimits: 'adapter', backend: 'webgpu' },
    cpu: { submitEvery: null, gpuLimits: null, backend: 'cpu' },
    badSubmit: { code: 'unsupported' },
    badLimits: { code: 'unsupported' },
  };
  const wrong = Object.keys(want).filter((k) => JSON.stringify(seen[k]) !== JSON.stringify(want[k]));
  failures += wrong.length ? 1 : 0;
  console.log(`${wrong.length ? 'FAIL' : 'ok'} Engine load options: ${Object.keys(want).map((k) => `${k} ${JSON.stringify(seen[k])}${wrong.includes(k) ? ` (expected ${JSON.stringify(want[k])})` : ''}`).join('; ')}`);
  await opts.close();
});
process.exit(failures ? 1 : 0);
