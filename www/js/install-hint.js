// "Add to Home Screen" hint: only in iOS Safari, only when not already opened from the Home
// Screen, and only until dismissed once.
import { loadSetting, saveSetting } from './settings.js';

function isIosSafari() {
  const ua = navigator.userAgent;
  const ios = /iPhone|iPad|iPod/.test(ua) || (/Macintosh/.test(ua) && navigator.maxTouchPoints > 1);
  const otherBrowser = /CriOS|FxiOS|EdgiOS|OPiOS|GSA\//.test(ua);
  return ios && !otherBrowser;
}

export function initInstallHint(box, dismissButton) {
  const standalone = navigator.standalone === true ||
    (window.matchMedia && window.matchMedia('(display-mode: standalone)').matches);
  if (standalone || !isIosSafari() || loadSetting('installHintDismissed', false)) return;
  box.hidden = false;
  dismissButton.addEventListener('click', () => {
    saveSetting('installHintDismissed', true);
    box.hidden = true;
  });
}
