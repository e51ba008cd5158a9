// Browser detection where iOS needs different behaviour (www/js/platform.js).
import test from 'node:test';
import assert from 'node:assert/strict';
import { isIos, isIosSafari, isStandalone, modelFileAccept, hasWebAssembly } from '../../www/js/platform.js';

const IPHONE_SAFARI = 'Mozilla/5.0 (iPhone; CPU iPhone OS 26_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/26.1 Mobile/15E148 Safari/604.1';
const IPHONE_CHROME = 'Mozilla/5.0 (iPhone; CPU iPhone OS 26_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/142.0.0.0 Mobile/15E148 Safari/604.1';
const IPAD_DESKTOP_MODE = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/26.1 Safari/605.1.15';
const LINUX_CHROMIUM = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36';

test('iPhone, and iPad in desktop mode (touch), are iOS; a Mac and Linux are not', () => {
  assert.equal(isIos(IPHONE_SAFARI), true);
  assert.equal(isIos(IPAD_DESKTOP_MODE, 5), true);
  assert.equal(isIos(IPAD_DESKTOP_MODE, 0), false);
  assert.equal(isIos(LINUX_CHROMIUM, 0), false);
});

test('the model picker filters by extension everywhere but iOS (where any iOS browser greys .gguf out)', () => {
  assert.equal(modelFileAccept(IPHONE_SAFARI), null);
  assert.equal(modelFileAccept(IPHONE_CHROME), null);
  assert.equal(modelFileAccept(IPAD_DESKTOP_MODE, 5), null);
  assert.equal(modelFileAccept(LINUX_CHROMIUM), '.gguf');
});

test('only Safari itself gets the Home Screen advice', () => {
  assert.equal(isIosSafari(IPHONE_SAFARI), true);
  assert.equal(isIosSafari(IPHONE_CHROME), false);
});

test('standalone: navigator.standalone (iOS) or the display-mode media query', () => {
  assert.equal(isStandalone({ standalone: true }, null), true);
  assert.equal(isStandalone({}, () => ({ matches: true })), true);
  assert.equal(isStandalone({ standalone: false }, () => ({ matches: false })), false);
});

test('Lockdown Mode: no WebAssembly object means no engine', () => {
  assert.equal(hasWebAssembly(globalThis), true);
  assert.equal(hasWebAssembly({}), false);
  assert.equal(hasWebAssembly({ WebAssembly: undefined }), false);
});
