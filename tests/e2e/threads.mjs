// Chromium scenarios about the threaded CPU build (www/worker/threads.js; registered by run.mjs,
// which passes its helpers). A cross-origin isolated page captions on the CPU with a pool of
// workers; any other page on one thread; both give the same token ids.
//   cpu-threads-isolated          a host that sends COOP/COEP (as `trunk serve` does): CPU captions
//                                 on the threaded build, equal to the CLI (f32 model); ?threads=0
//                                 keeps the same page on one thread
//   cpu-threads-via-service-worker  a host that sends neither: the first visit captions on one
//                                 thread; from the next visit on the service worker's headers
//                                 isolate the page and the same frame gives the same token ids on
//                                 the threads (q8_0 model: the int8 kernels of both builds, the
//                                 relaxed-SIMD one on one thread and SIMD128 on the threads)
import { start } from './server.mjs';
import { ask } from './gpu-loss.mjs';

export function registerThreadsScenarios({ scenario, withChromium, waitState, captureOnce, checkAgainstCli, cliNote, MODEL_URL, MODEL_F32_URL }) {
  /** The worker's thread report, checked: isolated, a pool of ≥ 2, the engine saying so. */
  async function threadsInUse(page) {
    const d = await ask(page, 'diagnostics');
    if (d.crossOriginIsolated !== true) throw new Error('the worker is not cross-origin isolated');
    if (!d.threads || !(d.threads.threads >= 2)) throw new Error(`diagnostics threads ${JSON.stringify(d.threads)}: expected a pool of at least 2`);
    if (!d.engine || d.engine.backend !== 'cpu' || !/threads/.test(d.engine.adapter)) throw new Error(`diagnostics engine ${JSON.stringify(d.engine)}: expected the threaded CPU build`);
    return d;
  }

  scenario('cpu-threads-isolated', async (S) => {
    const server = await start({ dist: S.dist, models: S.fx.modelsDir, coi: true });
    try {
      return await withChromium(S, { webgpu: false }, async ({ page }) => {
        await page.goto(`${server.url}/?model=${MODEL_F32_URL}`);
        await waitState(page, 'ready', { timeout: 120000 });
        const d = await threadsInUse(page);
        const r = await captureOnce(page, { timeout: S.captionTimeoutMs });
        if (r.backend !== 'cpu') throw new Error(`the worker captioned on ${r.backend}`);
        const { frame } = await checkAgainstCli(S, page, r, 'cpu', [], S.fx.modelF32);
        const { wasmMemoryBytes } = d;
        // ?threads=0 keeps the same isolated page on one thread, and says so.
        await page.goto(`${server.url}/?model=${MODEL_F32_URL}&threads=0`);
        await waitState(page, 'ready', { timeout: 120000 });
        const off = await ask(page, 'diagnostics');
        if (off.crossOriginIsolated !== true || off.threads.threads !== 0 || !/turned off/.test(off.threads.reason) || /threads/.test(off.engine.adapter)) {
          throw new Error(`?threads=0: diagnostics threads ${JSON.stringify(off.threads)}, engine ${JSON.stringify(off.engine)}`);
        }
        return `isolated by the server's headers; ${d.engine.adapter}; caption ${JSON.stringify(r.caption)} = CLI --backend cpu (token ids too) on the ${frame.width}x${frame.height} frame in ${Math.round(r.ms)} ms; wasm memory (both builds) ${(wasmMemoryBytes / 1048576).toFixed(0)} MiB; with ?threads=0: ${off.engine.adapter}, "${off.threads.reason}"`;
      });
    } finally {
      await server.close();
    }
  }, { timeoutMs: 300000 });

  scenario('cpu-threads-via-service-worker', (S) => withChromium(S, { webgpu: false }, async ({ page }) => {
    await page.goto(`${S.server.url}/?model=${MODEL_URL}`);
    await waitState(page, 'ready', { timeout: 120000 });
    const first = await ask(page, 'diagnostics');
    if (first.crossOriginIsolated !== false) throw new Error('isolated on the first visit, before the service worker could add headers: the test host sends them?');
    if (!first.threads || first.threads.threads !== 0 || !/not cross-origin isolated/.test(first.threads.reason || '')) throw new Error(`first visit: diagnostics threads ${JSON.stringify(first.threads)}: expected none, "not cross-origin isolated"`);
    // One thread here is the relaxed-SIMD build (Chromium has relaxed SIMD: www/worker/relaxed.js).
    if (!first.relaxed || first.relaxed.active !== true || !/relaxed simd/.test((first.engine && first.engine.adapter) || '')) {
      throw new Error(`first visit: diagnostics relaxed ${JSON.stringify(first.relaxed)}, engine ${JSON.stringify(first.engine)}: expected the relaxed-SIMD build`);
    }
    const one = await captureOnce(page, { timeout: S.captionTimeoutMs });
    const controlled = await page.evaluate(async () => {
      await Promise.race([navigator.serviceWorker.ready, new Promise((r) => setTimeout(r, 15000))]);
      return !!navigator.serviceWorker.controller;
    });
    if (!controlled) throw new Error('no service worker controls the page after the first visit');
    const navigations = [];
    page.on('framenavigated', (f) => { if (f === page.mainFrame()) navigations.push(f.url()); });
    await page.reload();
    await waitState(page, 'ready', { timeout: 120000 });
    if (navigations.length !== 1) throw new Error(`expected only our reload, the page navigated ${navigations.length} times (a reload loop?)`);
    const pageIsolated = await page.evaluate(() => self.crossOriginIsolated === true);
    if (!pageIsolated) throw new Error('the page is not cross-origin isolated after a reload under the service worker');
    const d = await threadsInUse(page);
    const many = await captureOnce(page, { timeout: S.captionTimeoutMs });
    if (JSON.stringify(many.tokenIds) !== JSON.stringify(one.tokenIds)) {
      throw new Error(`token ids on ${d.threads.threads} threads ${JSON.stringify(many.tokenIds)} ≠ on one thread ${JSON.stringify(one.tokenIds)}`);
    }
    return `first visit: not isolated, one thread (${first.engine.adapter}); after a reload the service worker's headers isolate the page: ${d.engine.adapter}; the same token ids on both (${one.tokenIds.length} ids, ${Math.round(one.ms)} ms on one thread, ${Math.round(many.ms)} ms on ${d.threads.threads}) ${await cliNote(S, page, many, 'cpu')}`;
  }), { timeoutMs: 300000 });
}
