// Keeps the screen on while the model downloads or automatic mode runs: iOS suspends a page whose
// screen locked, which stops both. Reasons are counted so either can release independently.
const reasons = new Set();
let sentinel = null;

let busy = Promise.resolve();
// Serialized: two quick calls must not request two locks.
function sync() {
  busy = busy.then(apply, apply);
  return busy;
}

async function apply() {
  if (!('wakeLock' in navigator)) return;
  const want = reasons.size > 0 && document.visibilityState === 'visible';
  try {
    if (want && !sentinel) {
      sentinel = await navigator.wakeLock.request('screen');
      sentinel.addEventListener('release', () => { sentinel = null; });
    } else if (!want && sentinel) {
      const s = sentinel;
      sentinel = null;
      await s.release();
    }
  } catch {
    sentinel = null;  // refused (low battery mode, not visible): the screen may lock, that's all
  }
}

export function holdWakeLock(reason, on) {
  if (on) reasons.add(reason);
  else reasons.delete(reason);
  sync();
}

// The browser drops the lock when the page is hidden; take it again on return.
document.addEventListener('visibilitychange', sync);
