// Progress messages, at most about ten a second: a message per tensor or network chunk would
// flood the page (and VoiceOver reading the progress bar).
import { FromWorker } from '../js/protocol.js';

const PROGRESS_EVERY_MS = 100;

/** A reporter for `phase`: call it with (loaded, total); `force` posts even inside the interval. */
export function throttled(phase) {
  let last = 0;
  return (loaded, total, force = false) => {
    const now = performance.now();
    if (!force && now - last < PROGRESS_EVERY_MS) return;
    last = now;
    self.postMessage({ type: FromWorker.PROGRESS, phase, loaded, total });
  };
}
