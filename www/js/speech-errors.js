// What to do when an utterance fails (its `error` event), so that a caption always reaches the
// user: speech.js retries once, then hands the text to VoiceOver. Pure; tests/web/speech-errors.test.mjs.
//
// Error codes are the Web Speech API's SpeechSynthesisErrorEvent.error values.

/**
 * 'ignore': "canceled" and "interrupted" are ours (a newer caption, Stop, or the app cancelling);
 * 'retry-any-voice': the chosen voice or its language is missing (a voice deleted in Settings, a
 *   voice list not loaded yet): try again with only `lang`, so the system picks a voice;
 * 'retry': anything else, once ("audio-busy" after a call, "synthesis-failed", "not-allowed"
 *   when iOS took the unlock back);
 * 'fallback': it failed again: stop trying, show and announce the text instead.
 */
export function speechErrorAction(error, attempt) {
  if (error === 'canceled' || error === 'interrupted') return 'ignore';
  if (attempt >= 1) return 'fallback';
  if (error === 'voice-unavailable' || error === 'language-unavailable') return 'retry-any-voice';
  return 'retry';
}
