// What kind of browser this is, where iOS needs the app to behave differently
// (docs/web-app.md, "On iPhone"). Pure functions of what the browser reports, for node:test.

/** iPhone, iPod, or an iPad (iPadOS says "Macintosh" but has a touch screen). Every iOS browser is WebKit. */
export function isIos(userAgent, maxTouchPoints = 0) {
  return /iPhone|iPad|iPod/.test(userAgent) || (/Macintosh/.test(userAgent) && maxTouchPoints > 1);
}

/** Safari itself, not Chrome/Firefox/Edge/Opera/Google on iOS (only Safari can Add to Home Screen... and keep it). */
export function isIosSafari(userAgent, maxTouchPoints = 0) {
  return isIos(userAgent, maxTouchPoints) && !/CriOS|FxiOS|EdgiOS|OPiOS|GSA\//.test(userAgent);
}

/** Opened from the Home Screen (or installed elsewhere): its own storage, its own permissions. */
export function isStandalone(nav, matchMedia) {
  return nav.standalone === true || Boolean(matchMedia && matchMedia('(display-mode: standalone)').matches);
}

/**
 * The model file picker's `accept`: iOS maps `accept` to file types, not extensions, and greys out
 * a .gguf (it has no registered type), so there it is left off; the worker checks the GGUF magic.
 */
export function modelFileAccept(userAgent, maxTouchPoints = 0) {
  return isIos(userAgent, maxTouchPoints) ? null : '.gguf';
}

/** Lockdown Mode (and some locked-down browsers) remove WebAssembly: nothing of the engine can run. */
export function hasWebAssembly(global) {
  return typeof global.WebAssembly === 'object' && global.WebAssembly !== null &&
    typeof global.WebAssembly.instantiate === 'function';
}
