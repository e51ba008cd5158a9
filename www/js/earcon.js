// The "working on it" click (see the sound design in speech.js): two short soft tones, ~90 ms in
// all, quiet enough to sit under VoiceOver. Web Audio must be started inside a user tap on iOS.
import { loadSetting, saveSetting } from './settings.js';

let ctx = null;
let enabledInput = null;

export function initEarcon(input) {
  enabledInput = input;
  input.checked = !!loadSetting('sounds', true);
  input.addEventListener('change', () => saveSetting('sounds', input.checked));
}

/** Call inside a user tap. */
export function unlockAudio() {
  const AudioCtx = window.AudioContext || window.webkitAudioContext;
  if (!AudioCtx) return;
  try {
    if (!ctx) ctx = new AudioCtx();
    if (ctx.state === 'suspended') ctx.resume();
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
