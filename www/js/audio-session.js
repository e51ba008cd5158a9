// The page's audio session type (Audio Session API; Safari and iOS 16.4+, nowhere else yet:
// https://developer.mozilla.org/en-US/docs/Web/API/Navigator/audioSession). See earcon.js for why
// "ambient". Pure of globals (the navigator is passed in); tests/web/audio-session.test.mjs.

/** Sets navigator.audioSession.type to "ambient" where the API exists; true when it took. */
export function useAmbientAudioSession(nav) {
  const session = nav && nav.audioSession;
  if (!session || !('type' in session)) return false;
  try {
    session.type = 'ambient';
    return session.type === 'ambient';
  } catch {
    return false;  // refused (e.g. a permissions policy): the engine's default stays
  }
}
