// What speech.js does with an utterance error (www/js/speech-errors.js): ignore our own cancels,
// retry once, then hand the caption to VoiceOver.
import test from 'node:test';
import assert from 'node:assert/strict';
import { speechErrorAction } from '../../www/js/speech-errors.js';

test('our own cancels are not failures, on any attempt', () => {
  for (const error of ['canceled', 'interrupted']) {
    assert.equal(speechErrorAction(error, 0), 'ignore');
    assert.equal(speechErrorAction(error, 1), 'ignore');
  }
});

test('a first failure is retried once; a missing voice is retried with the system voice', () => {
  for (const error of ['synthesis-failed', 'audio-busy', 'audio-hardware', 'network', 'not-allowed', 'synthesis-unavailable', 'text-too-long', 'invalid-argument', undefined]) {
    assert.equal(speechErrorAction(error, 0), 'retry', String(error));
  }
  assert.equal(speechErrorAction('voice-unavailable', 0), 'retry-any-voice');
  assert.equal(speechErrorAction('language-unavailable', 0), 'retry-any-voice');
});

test('a second failure falls back to showing and announcing the text', () => {
  for (const error of ['synthesis-failed', 'voice-unavailable', 'not-allowed']) assert.equal(speechErrorAction(error, 1), 'fallback');
});
