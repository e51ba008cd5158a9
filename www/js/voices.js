// Which speech voice reads the captions. Captions are English whatever the phone's language is.
//
// Why an explicit voice: iOS (since 13) has ignored an utterance's `lang` and read with the voice
// of the system language, so a French iPhone read English captions with a French voice; setting
// `utterance.voice` is what works (https://stackoverflow.com/a/59730587). So when the user chose
// no voice, we choose one: the best English voice there is.
//
// Pure functions of the voice list (SpeechSynthesisVoice-like objects: name, lang, voiceURI,
// default, localService); tests/web/voices.test.mjs tests them.

/** "en", "en-US", "en_GB" (Android writes an underscore), any case. */
export function isEnglish(lang) {
  return /^en([-_]|$)/i.test(lang || '');
}

const isUsEnglish = (lang) => /^en[-_]us$/i.test(lang || '');

/**
 * Rank of an English voice, lower is better:
 * 1. on the device first: a network voice (Chrome's "Google …" voices, localService false) sends
 *    the caption text to a server, and this app promises that nothing leaves the phone;
 * 2. the system's default voice, if it is English: the one the user hears everywhere else;
 * 3. US English, the language the model writes;
 * 4. any other English.
 */
function rank(v) {
  return (v.localService === false ? 4 : 0) + (v.default ? 0 : 2) + (isUsEnglish(v.lang) ? 0 : 1);
}

/** The best English voice, or null when there is none (then only `lang` can be set). */
export function bestEnglishVoice(voices) {
  let best = null;
  for (const v of voices || []) {
    // Ties keep the system's order (the first of equals wins).
    if (isEnglish(v.lang) && (!best || rank(v) < rank(best))) best = v;
  }
  return best;
}

/** The voice to read with: the user's choice while it exists, else the best English voice, else null. */
export function pickVoice(voices, chosenURI) {
  if (chosenURI) {
    const chosen = (voices || []).find((v) => v.voiceURI === chosenURI);
    if (chosen) return chosen;
  }
  return bestEnglishVoice(voices);
}

/** The voices offered in the menu: the English ones (all voices when none is), default first, then by language and name. */
export function menuVoices(voices) {
  const all = voices || [];
  const english = all.filter((v) => isEnglish(v.lang));
  return (english.length ? english : all)
    .slice()
    .sort((a, b) => (b.default - a.default) || a.lang.localeCompare(b.lang) || a.name.localeCompare(b.name));
}
