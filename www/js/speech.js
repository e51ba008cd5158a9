// Speaking captions, and keeping them from being heard twice.
//
// Sound design
// - Every description starts with a short, quiet click (earcon.js, can be turned off): it says
//   "heard you, working on it" without words, so it never talks over VoiceOver.
// - Each caption is read once, by one voice:
//   * "Let VoiceOver read captions; don't speak" ON: we never call speak(); #caption is a polite
//     live region and VoiceOver reads the new text when it is done with what it is saying.
//   * OFF (default; works with and without VoiceOver): we speak the caption ourselves, with the
//     chosen voice and rate. So that VoiceOver doesn't read it as well, #caption is switched to
//     aria-live="off" just before its text changes and back to "polite" a moment later (live
//     regions announce changes, not contents, so switching back announces nothing).
// - A new caption interrupts the one being spoken (cancel, then speak): the newest view matters.
// - Automatic mode never repeats itself: the same text twice in a row is not spoken or
//   re-announced; "Repeat" says the last caption again on request, in either mode.
// - Status (download progress, backend changes) goes to #status, polite and throttled; errors
//   to a role="alert" element. Nothing is announced through two channels.
import { loadSetting, saveSetting } from './settings.js';

const RESTORE_LIVE_MS = 1000;  // long after the accessibility tree has seen the change
const REANNOUNCE_GAP_MS = 150; // an empty live region for this long makes the same text news again

export class Speech {
  constructor({ captionEl, rateInput, voiceSelect, srOnlyInput }) {
    this.synth = 'speechSynthesis' in window ? window.speechSynthesis : null;
    this.captionEl = captionEl;
    this.rateInput = rateInput;
    this.voiceSelect = voiceSelect;
    this.srOnlyInput = srOnlyInput;
    this.lastSpoken = null;
    this.current = null;       // the utterance being spoken (kept so Safari doesn't drop its events)
    this.unlocked = false;
    this.liveTimer = 0;
    this.pendingSpeak = 0;

    this.rate = Number(loadSetting('rate', 1)) || 1;
    rateInput.value = String(this.rate);
    rateInput.addEventListener('change', () => {
      this.rate = Number(rateInput.value) || 1;
      saveSetting('rate', this.rate);
    });
    rateInput.addEventListener('input', () => { this.rate = Number(rateInput.value) || 1; });

    this.voiceURI = loadSetting('voice', '');
    voiceSelect.addEventListener('change', () => {
      this.voiceURI = voiceSelect.value;
      saveSetting('voice', this.voiceURI);
    });

    srOnlyInput.checked = !!loadSetting('screenReaderOnly', false) || !this.synth;
    srOnlyInput.disabled = !this.synth;
    srOnlyInput.addEventListener('change', () => {
      saveSetting('screenReaderOnly', srOnlyInput.checked);
      if (srOnlyInput.checked) this.stop();
      this.#setLive('polite');
    });

    if (this.synth) {
      this.#populateVoices();
      this.synth.addEventListener?.('voiceschanged', () => this.#populateVoices());
    }
  }

  get screenReaderOnly() { return this.srOnlyInput.checked || !this.synth; }
  get speaking() { return !!this.synth && (this.synth.speaking || this.synth.pending || !!this.pendingSpeak); }

  /** Call inside the first user tap: iOS only lets speech start from a gesture, once. */
  unlock() {
    if (this.unlocked || !this.synth) return;
    this.unlocked = true;
    try {
      this.synth.speak(new SpeechSynthesisUtterance(''));
    } catch {
      // nothing to unlock
    }
  }

  /** Shows a new caption in #caption and says it once (see the sound design above). */
  present(text, { auto = false } = {}) {
    if (this.screenReaderOnly) {
      this.#setLive('polite');
      this.#setCaption(text, /* reannounce */ !auto);
      this.lastSpoken = text;
      return;
    }
    this.#setLive('off');
    this.captionEl.textContent = text;
    this.#restoreLiveSoon();
    if (auto && text === this.lastSpoken) return;
    this.say(text);
  }

  /** Says the last caption again (Repeat button). */
  repeat() {
    const text = this.captionEl.textContent;
    if (!text) return false;
    if (this.screenReaderOnly) {
      this.#setLive('polite');
      this.#setCaption(text, true);
    } else {
      this.say(text);
    }
    return true;
  }

  stop() {
    clearTimeout(this.pendingSpeak);
    this.pendingSpeak = 0;
    if (this.synth) this.synth.cancel();
    this.current = null;
  }

  say(text) {
    if (!this.synth || !text) return;
    const utterance = new SpeechSynthesisUtterance(text);
    utterance.rate = this.rate;
    const voice = this.#voice();
    if (voice) {
      utterance.voice = voice;
      utterance.lang = voice.lang;
    } else {
      utterance.lang = 'en-US';  // captions are English whatever the system language is
    }
    const busy = this.synth.speaking || this.synth.pending;
    this.stop();
    this.lastSpoken = text;
    const start = () => {
      this.pendingSpeak = 0;
      this.current = utterance;
      utterance.addEventListener('end', () => { if (this.current === utterance) this.current = null; });
      this.synth.speak(utterance);
    };
    // Safari drops a speak() that comes right after cancel() of a running utterance.
    if (busy) this.pendingSpeak = setTimeout(start, 60);
    else start();
  }

  #voice() {
    if (!this.voiceURI || !this.synth) return null;
    return this.synth.getVoices().find((v) => v.voiceURI === this.voiceURI) || null;
  }

  #populateVoices() {
    const all = this.synth.getVoices();
    const english = all.filter((v) => /^en\b/i.test(v.lang));
    const voices = (english.length ? english : all)
      .slice()
      .sort((a, b) => (b.default - a.default) || a.lang.localeCompare(b.lang) || a.name.localeCompare(b.name));
    const select = this.voiceSelect;
    select.replaceChildren(new Option('System default', ''));
    for (const v of voices) select.append(new Option(`${v.name} (${v.lang})`, v.voiceURI));
    select.value = voices.some((v) => v.voiceURI === this.voiceURI) ? this.voiceURI : '';
  }

  #setLive(value) {
    clearTimeout(this.liveTimer);
    this.captionEl.setAttribute('aria-live', value);
  }

  #restoreLiveSoon() {
    clearTimeout(this.liveTimer);
    this.liveTimer = setTimeout(() => this.captionEl.setAttribute('aria-live', 'polite'), RESTORE_LIVE_MS);
  }

  #setCaption(text, reannounce) {
    const el = this.captionEl;
    if (el.textContent !== text) {
      el.textContent = text;
    } else if (reannounce) {
      // Same words asked for again: empty the region briefly so the text is a change again.
      el.textContent = '';
      setTimeout(() => { if (!el.textContent) el.textContent = text; }, REANNOUNCE_GAP_MS);
    }
  }
}
