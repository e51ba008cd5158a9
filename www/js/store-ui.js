// The model screen: where the model comes from (address or file), download progress, delete.
// Progress is shown three ways: the <progress> bar (its aria-valuetext is what VoiceOver reads
// when it is focused), a visible line (same words, hidden from VoiceOver to avoid reading it
// twice while swiping), and an occasional polite announcement in #status.
import { formatBytes, formatTimeLeft, percent, modelName } from './format.js';
import { loadSetting, saveSetting } from './settings.js';

export const DEFAULT_MODEL_URL = 'models/blip-base-q8_0.gguf';
const ANNOUNCE_EVERY_MS = 10000;   // a screen reader user hears progress at most this often
const RATE_WINDOW_MS = 1000;       // speed measured over this much time, then smoothed

const PHASE_LABEL = {
  download: 'Downloading the model',
  verify: 'Checking the download',
  copy: 'Copying the model file',
  load: 'Loading the model',
};

export class StoreUI {
  constructor(els, { onDownload, onFile, onPause, onDelete, announce }) {
    this.els = els;
    this.announce = announce;
    this.stored = null;
    this.partial = null;
    this.resetProgress();

    els.url.value = loadSetting('modelUrl', DEFAULT_MODEL_URL);
    els.url.addEventListener('input', () => this.#updateDownloadLabel());

    els.form.addEventListener('submit', (event) => {
      event.preventDefault();
      const url = els.url.value.trim() || DEFAULT_MODEL_URL;
      saveSetting('modelUrl', url);
      onDownload(url);
    });
    const pick = () => els.file.click();
    els.chooseFile.addEventListener('click', pick);
    for (const b of els.extraChooseFile) b.addEventListener('click', pick);
    els.file.addEventListener('change', () => {
      const file = els.file.files && els.file.files[0];
      els.file.value = '';  // so choosing the same file again still fires "change"
      if (file) onFile(file);
    });
    els.pause.addEventListener('click', onPause);

    els.remove.addEventListener('click', () => {
      els.confirmBox.hidden = false;
      els.confirmText.focus();
    });
    els.cancelDelete.addEventListener('click', () => {
      els.confirmBox.hidden = true;
      els.remove.focus();
    });
    els.confirmDelete.addEventListener('click', () => {
      els.confirmBox.hidden = true;
      onDelete();
    });
    for (const b of els.extraDelete) b.addEventListener('click', onDelete);
  }

  /**
   * What the worker says is stored: a complete model and/or a resumable partial download. With a
   * loaded model, `adapter` names what runs it and `gpu` ({submitEvery, gpuLimits}, WebGPU only)
   * its settings, shown in words and as data-submit-every / data-gpu-limits for tests.
   */
  setStored(stored, partial = null, adapter = '', gpu = null) {
    this.stored = stored;
    this.partial = partial;
    const { info, remove } = this.els;
    remove.hidden = !stored;
    info.hidden = !stored;
    delete info.dataset.submitEvery;
    delete info.dataset.gpuLimits;
    if (stored) {
      let running = adapter ? ` Running on: ${adapter}` : '';
      if (adapter && gpu) {
        const submit = gpu.submitEvery ? `${gpu.submitEvery} dispatches` : 'no bound';
        running += ` (WebGPU limits: ${gpu.gpuLimits || 'adapter'}; submit size: ${submit})`;
        info.dataset.submitEvery = gpu.submitEvery ? String(gpu.submitEvery) : 'none';
        info.dataset.gpuLimits = gpu.gpuLimits || 'adapter';
      }
      info.textContent = `On this device: ${modelName(stored.url)}, ${formatBytes(stored.size)}.` +
        (running ? `${running}.` : '');
    }
    if (partial && !stored) this.els.url.value = this.#displayUrl(partial.url);
    this.#updateDownloadLabel();
  }

  #displayUrl(url) {
    // Show a model beside the app as the short relative path the user would type.
    try {
      const base = new URL('./', location.href).href;
      return url.startsWith(base) ? url.slice(base.length) : url;
    } catch {
      return url;
    }
  }

  #updateDownloadLabel() {
    const { download, url } = this.els;
    const partial = this.partial;
    let label = this.stored ? 'Download and replace the model' : 'Download the model';
    if (partial && absoluteUrl(url.value.trim() || DEFAULT_MODEL_URL) === partial.url) {
      label = partial.size
        ? `Resume the download (${formatBytes(partial.loaded)} of ${formatBytes(partial.size)} done)`
        : 'Resume the download';
    }
    download.textContent = label;
  }

  resetProgress() {
    this.els.pause.hidden = true;
    this.phase = null;
    this.samples = null;     // {t, loaded} at the start of the current speed window
    this.bytesPerSec = 0;
    this.lastAnnounce = 0;
    this.lastAnnouncedPercent = -1;
  }

  /** A {type:"progress"} message from the worker. */
  progress({ phase, loaded, total }) {
    const { bar, label, text } = this.els;
    const now = performance.now();
    if (phase !== this.phase) {
      this.phase = phase;
      this.els.pause.hidden = phase !== 'download';  // only a download can be paused and resumed
      this.samples = { t: now, loaded };
      this.bytesPerSec = 0;
      label.textContent = PHASE_LABEL[phase] || 'Working';
      const size = total ? `, ${formatBytes(total)}` : '';
      this.announce(`${PHASE_LABEL[phase] || 'Working'}${phase === 'download' || phase === 'copy' ? size : ''}.`);
      this.lastAnnounce = now;
      this.lastAnnouncedPercent = percent(loaded, total) ?? -1;
    }

    if (now - this.samples.t >= RATE_WINDOW_MS) {
      const rate = ((loaded - this.samples.loaded) * 1000) / (now - this.samples.t);
      // Smoothed, so "time left" doesn't jump about with every burst of the network.
      this.bytesPerSec = this.bytesPerSec ? this.bytesPerSec * 0.7 + rate * 0.3 : rate;
      this.samples = { t: now, loaded };
    }

    const pct = percent(loaded, total);
    if (total) {
      bar.max = total;
      bar.value = Math.min(loaded, total);
    } else {
      bar.removeAttribute('value');  // indeterminate: the server didn't say how big the file is
    }
    const words = this.#describe(phase, loaded, total, pct);
    bar.setAttribute('aria-valuetext', words);
    text.textContent = words;

    if (pct !== null && now - this.lastAnnounce >= ANNOUNCE_EVERY_MS && pct !== this.lastAnnouncedPercent) {
      this.lastAnnounce = now;
      this.lastAnnouncedPercent = pct;
      this.announce(words);
    }
  }

  #describe(phase, loaded, total, pct) {
    const bytes = phase === 'download' || phase === 'copy';
    const parts = [];
    if (bytes) parts.push(total ? `${formatBytes(loaded)} of ${formatBytes(total)}` : `${formatBytes(loaded)}`);
    if (pct !== null) parts.push(`${pct}%`);
    if (total && this.bytesPerSec > 0 && loaded < total) {
      parts.push(formatTimeLeft((total - loaded) / this.bytesPerSec));
    }
    return parts.join(', ') || 'Starting';
  }
}

export function absoluteUrl(url) {
  try {
    return new URL(url, location.href).href;
  } catch {
    return url;
  }
}
