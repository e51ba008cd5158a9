// Choosing the speech voice (www/js/voices.js): an explicit English voice, since iOS ignores `lang`.
import test from 'node:test';
import assert from 'node:assert/strict';
import { isEnglish, bestEnglishVoice, pickVoice, menuVoices } from '../../www/js/voices.js';

const voice = (name, lang, extra = {}) => ({ name, lang, voiceURI: `uri:${name}`, default: false, localService: true, ...extra });

// A French iPhone: the default voice is French.
const FRENCH_IPHONE = [
  voice('Thomas', 'fr-FR', { default: true }),
  voice('Daniel', 'en-GB'),
  voice('Samantha', 'en-US'),
  voice('Karen', 'en-AU'),
];

test('English tags, with a hyphen or an underscore, any case', () => {
  for (const lang of ['en', 'en-US', 'en_GB', 'EN-au']) assert.equal(isEnglish(lang), true, lang);
  for (const lang of ['fr-FR', 'eng', '', undefined, 'es-US']) assert.equal(isEnglish(lang), false, String(lang));
});

test('a non-English default: en-US is chosen, not the system voice', () => {
  assert.equal(bestEnglishVoice(FRENCH_IPHONE).name, 'Samantha');
});

test('an English default voice is preferred over en-US', () => {
  const voices = [voice('Samantha', 'en-US'), voice('Daniel', 'en-GB', { default: true })];
  assert.equal(bestEnglishVoice(voices).name, 'Daniel');
});

test('without en-US, any English voice; without English, none', () => {
  assert.equal(bestEnglishVoice([voice('Thomas', 'fr-FR', { default: true }), voice('Karen', 'en_AU')]).name, 'Karen');
  assert.equal(bestEnglishVoice([voice('Thomas', 'fr-FR', { default: true })]), null);
  assert.equal(bestEnglishVoice([]), null);
  assert.equal(bestEnglishVoice(undefined), null);
});

test('a voice on the device beats a network voice, even the default one (captions stay on the phone)', () => {
  const chrome = [
    voice('Google US English', 'en-US', { localService: false, default: true }),
    voice('espeak English', 'en-GB'),
  ];
  assert.equal(bestEnglishVoice(chrome).name, 'espeak English');
  // Only network voices: still English rather than nothing.
  assert.equal(bestEnglishVoice([voice('Google UK English', 'en-GB', { localService: false })]).name, 'Google UK English');
});

test('among equals the system order is kept', () => {
  assert.equal(bestEnglishVoice([voice('Fred', 'en-US'), voice('Samantha', 'en-US')]).name, 'Fred');
});

test("the user's choice wins while it exists; a vanished choice falls back to the best English voice", () => {
  assert.equal(pickVoice(FRENCH_IPHONE, 'uri:Karen').name, 'Karen');
  assert.equal(pickVoice(FRENCH_IPHONE, 'uri:Thomas').name, 'Thomas');  // chosen on purpose: respected
  assert.equal(pickVoice(FRENCH_IPHONE, 'uri:deleted').name, 'Samantha');
  assert.equal(pickVoice(FRENCH_IPHONE, '').name, 'Samantha');
});

test('the menu lists English voices (default first, then by language and name), or all when none is English', () => {
  assert.deepEqual(menuVoices(FRENCH_IPHONE).map((v) => v.name), ['Karen', 'Daniel', 'Samantha']);
  const none = [voice('Thomas', 'fr-FR'), voice('Anna', 'de-DE', { default: true })];
  assert.deepEqual(menuVoices(none).map((v) => v.name), ['Anna', 'Thomas']);
});
