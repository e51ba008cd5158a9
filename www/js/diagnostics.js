// "About this device": what a user can read (VoiceOver reads one line per list item) and copy
// into a message to us. The first real iPhone run has to tell us what happened, so this lists
// what decides speed and failures: the WebGPU adapter and its limits, the backend in use, the
// command-buffer size, the model, storage and its persistence, wasm memory and the last
// caption's timings. `diagnosticLines` is pure (tests/web/diagnostics.test.mjs).
import { formatBytes, modelName } from './format.js';

const LIMIT_NAMES = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxStorageBuffersPerShaderStage',
];

function mib(n) {
  return Number.isFinite(n) ? `${(n / 1048576).toFixed(0)} MiB` : 'unknown';
}

function ms(n) {
  return Number.isFinite(n) ? `${Math.round(n)} ms` : '?';
}

/**
 * [label, value] pairs from the worker's {type:"diagnostics"} reply (`worker`, null when it did
 * not answer) and what the page knows (`page`).
 */
export function diagnosticLines(worker, page) {
  const lines = [];
  const add = (label, value) => lines.push([label, value === undefined || value === null || value === '' ? 'unknown' : String(value)]);
  add('App build', page.build);
  add('Browser', page.userAgent);
  add('Opened from', page.standalone ? 'the Home Screen (installed app)' : 'a browser tab');
  add('Backend in use', page.backend ? (page.backend === 'webgpu' ? 'WebGPU (graphics processor)' : 'CPU (main processor)') : 'none yet');
  add('Backend asked for', `${page.backendPref}${page.forcedBackend ? `, forced to ${page.forcedBackend} after a hung GPU` : ''}`);
  const gpu = worker && worker.webgpu;
  if (!worker) {
    add('Engine', 'the model worker did not answer');
  } else if (!gpu || gpu.available === false) {
    add('WebGPU', 'not available in this browser');
  } else {
    const name = [gpu.vendor, gpu.architecture, gpu.device, gpu.description].filter(Boolean).join(', ');
    add('WebGPU adapter', name || 'unnamed');
    add('WebGPU features', (gpu.features || []).length ? gpu.features.join(', ') : 'none');
    const limits = gpu.limits || {};
    add('WebGPU limits', LIMIT_NAMES.filter((k) => limits[k] !== undefined).map((k) => `${k} ${limits[k]}`).join(', '));
  }
  const engine = worker && worker.engine;
  if (engine) {
    add('Engine adapter', engine.adapter);
    if (engine.backend === 'webgpu') {
      add('Command buffer size', engine.submitEvery ? `at most ${engine.submitEvery} dispatches per submit` : 'no bound (whole caption)');
      add('Device limits', engine.gpuLimits === 'default' ? "the WebGPU spec's defaults" : "the adapter's own");
    }
    if (engine.gpuRetries) add('GPU devices lost and replaced', engine.gpuRetries);
  }
  const model = worker && worker.model;
  add('Model', model ? `${modelName(model.url)}, ${formatBytes(model.size)}, SHA-256 ${model.sha256 || 'not checked'}` : 'none loaded');
  if (engine && engine.testModel) add('Model note', 'test model with random weights: its words are noise');
  const storage = (worker && worker.storage) || page.storage;
  if (storage) {
    const used = Number.isFinite(storage.usage) ? formatBytes(storage.usage) : 'unknown';
    const quota = Number.isFinite(storage.quota) ? formatBytes(storage.quota) : 'unknown';
    add('Storage', `${used} used of ${quota} allowed`);
    add('Storage kept', storage.persisted === true ? 'yes (persistent: not evicted under pressure)'
      : storage.persisted === false ? 'no (the browser may evict the model when space runs low)' : 'unknown');
    if (storage.opfs === false) add('Model store', 'memory only (no private file system): downloaded again each visit');
  }
  add('Wasm memory', worker ? mib(worker.wasmMemoryBytes) : 'unknown');
  const last = (worker && worker.lastCaption) || page.lastResult;
  if (last) {
    const t = last.timingsMs || {};
    add('Last caption', `${ms(last.ms ?? t.total)} on ${last.backend || 'unknown'} (preprocess ${ms(t.preprocess)}, vision ${ms(t.vision)}, decode ${ms(t.decode)})`);
  } else {
    add('Last caption', 'none yet');
  }
  add('Camera', page.camera);
  add('Speech', page.speech);
  add('Cross-origin isolated', worker ? (worker.crossOriginIsolated ? 'yes' : 'no') : 'unknown');
  const threads = worker && worker.threads;
  if (threads) add('CPU threads', threads.threads > 0 ? String(threads.threads) : `1 (${threads.reason})`);
  const relaxed = worker && worker.relaxed;
  if (relaxed) add('CPU relaxed SIMD', relaxed.active ? 'yes' : `no (${relaxed.reason})`);
  return lines;
}

/** The copyable text: one "label: value" line each, with the date. */
export function diagnosticText(lines, when = new Date()) {
  return [`edgecap diagnostics, ${when.toISOString()}`, ...lines.map(([k, v]) => `${k}: ${v}`)].join('\n');
}

/** Renders the lines into a <ul> (one item each, read as "label: value"). */
export function renderDiagnostics(list, lines) {
  list.replaceChildren(...lines.map(([k, v]) => {
    const li = document.createElement('li');
    const b = document.createElement('strong');
    b.textContent = `${k}: `;
    li.append(b, document.createTextNode(v));
    return li;
  }));
}
