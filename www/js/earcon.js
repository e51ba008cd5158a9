// The "working on it" click (see the sound design in speech.js): two short soft tones, ~90 ms in
// all, quiet enough to sit under VoiceOver. Web Audio must be started inside a user tap on iOS.
//
// The ring/silent switch. On iOS the page's audio session decides whether the switch silences
// the page; Web Audio alone gets the "ambient" category, which the switch and the screen lock
// silence and which mixes with other apps' audio (WebKit's MediaSessionManagerCocoa; Apple's
// AVAudioSession.Category.ambient). We keep that, and say so explicitly with
// navigator.audioSession.type = "ambient" (Safari/iOS 16.4+; WebKit maps it to the same category,
// DOMAudioSession.cpp), so that a later engine default cannot change it:
// - the click is a UI sound, like a keyboard click: with the switch on silent the user has asked
//   for no such sounds, and the click carries nothing the caption does not;
// - "ambient" mixes, so a click never pauses the user's music or podcast ("playback" would);
// - speech is not affected: WebKit speaks speechSynthesis in the browser's own process
//   (WebSpeechSynthesisClient sends it to the UI process), not under the page's audio session,
//   and VoiceOver is the system's. Captions are still heard with the switch on silent.
import { loadSetting, saveSetting } from './settings.js';
import { useAmbientAudioSession } from './audio-session.js';

let ctx = null;
let enabledInput = null;

export function initEarcon(input) {
  enabledInput = input;
  input.checked = !!loadSetting('sounds', true);
  input.addEventListener('change', () => saveSetting('sounds', input.checked));
  // Before any AudioContext exists, so the session starts in the right category.
  useAmbientAudioSession(window.navigator);
}

/** Call inside a user tap (every tap: iOS suspends the context when the app goes to the background). */
export function unlockAudio() {
  const AudioCtx = window.AudioContext || window.webkitAudioContext;
  if (!AudioCtx) return;
  try {
    if (!ctx) ctx = new AudioCtx();
    if (ctx.state === 'suspended' || ctx.state === 'interrupted') ctx.resume();
  } catch {
    ctx = null;
  }
}

export function click() {
  if (!ctx || !enabledInput || !enabledInput.checked || ctx.state !== 'running') return;
  const t0 = ctx.currentTime + 0.01;
  tone(1320, t0, 0.035);
  tone(990, t0 + 0.05, 0.04);
}

function tone(freq, start, duration) {
  const osc = ctx.createOscillator();
  const gain = ctx.createGain();
  osc.type = 'sine';
  osc.frequency.value = freq;
  gain.gain.setValueAtTime(0.0001, start);
  gain.gain.exponentialRampToValueAtTime(0.12, start + 0.005);
  gain.gain.exponentialRampToValueAtTime(0.0001, start + duration);
  osc.connect(gain).connect(ctx.destination);
  osc.start(start);
  osc.stop(start + duration + 0.01);
}
