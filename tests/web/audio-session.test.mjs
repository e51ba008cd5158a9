// The earcon's audio session (www/js/audio-session.js): "ambient" where navigator.audioSession
// exists (Safari/iOS 16.4+), nothing elsewhere.
import test from 'node:test';
import assert from 'node:assert/strict';
import { useAmbientAudioSession } from '../../www/js/audio-session.js';

test('Safari: the type becomes "ambient"', () => {
  const nav = { audioSession: { type: 'auto' } };
  assert.equal(useAmbientAudioSession(nav), true);
  assert.equal(nav.audioSession.type, 'ambient');
});

test('Chromium, Firefox (no audioSession) and a missing navigator: nothing happens', () => {
  assert.equal(useAmbientAudioSession({}), false);
  assert.equal(useAmbientAudioSession(undefined), false);
  assert.equal(useAmbientAudioSession({ audioSession: {} }), false);
});

test('a session that refuses the type (throws, or keeps its own) leaves the default', () => {
  const throwing = { audioSession: { get type() { return 'auto'; }, set type(_) { throw new Error('no'); } } };
  assert.equal(useAmbientAudioSession(throwing), false);
  const ignoring = { audioSession: { get type() { return 'auto'; }, set type(_) {} } };
  assert.equal(useAmbientAudioSession(ignoring), false);
});
