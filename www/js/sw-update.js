// Service worker registration and the update flow. A new version never takes over by itself
// (no automatic skipWaiting): a running app keeps its own files until the user chooses
// "Reload to update", which activates the waiting worker and reloads once it controls the page.
const CHECK_EVERY_MS = 60 * 60 * 1000;

export function initServiceWorker(banner, reloadButton) {
  if (!('serviceWorker' in navigator) || !window.isSecureContext) return;
  let reloading = false;
  let userAsked = false;
  let lastCheck = Date.now();

  navigator.serviceWorker.addEventListener('controllerchange', () => {
    // Only the user's choice reloads; a first install that claims the page changes nothing visible.
    if (!userAsked || reloading) return;
    reloading = true;
    location.reload();
  });

  navigator.serviceWorker.register('sw.js').then((reg) => {
    const offer = () => {
      if (reg.waiting && navigator.serviceWorker.controller) banner.hidden = false;
    };
    offer();
    reg.addEventListener('updatefound', () => {
      const incoming = reg.installing;
      if (!incoming) return;
      incoming.addEventListener('statechange', () => {
        if (incoming.state === 'installed') offer();
      });
    });
    reloadButton.addEventListener('click', () => {
      if (!reg.waiting) { location.reload(); return; }
      userAsked = true;
      reloadButton.disabled = true;
      reg.waiting.postMessage({ type: 'skip-waiting' });
    });
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible' && Date.now() - lastCheck > CHECK_EVERY_MS) {
        lastCheck = Date.now();
        reg.update().catch(() => {});
      }
    });
  }).catch(() => {
    // No offline support this time (private mode, file://): the app itself still works.
  });
}
