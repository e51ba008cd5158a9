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
//   * If speaking fails (an utterance `error` that is not our own cancel, and once more on a
//     retry), the caption is handed to VoiceOver instead: a visually hidden polite live region
//     next to #caption (#speech-fallback) gets the text, which is then announced once, and
//     onFailed tells the app. It is a region of its own because #caption already holds the text
//     (set while "off"), and making the same text news again there would mean emptying #caption
//     for a moment. Nothing is both spoken and announced: the fallback comes only after speech
//     failed, and is emptied when the next caption comes.
// - A new caption interrupts the one being spoken (cancel, then speak): the newest view matters.
// - Automatic mode never repeats itself: the same text twice in a row is not spoken or
//   re-announced; "Repeat" says the last caption again on request, in either mode.
// - Status (download progress, backend changes) goes to #status, polite and throttled; errors
//   to a role="alert" element. Nothing is announced through two channels.
import { loadSetting, saveSetting } from './settings.js';
import { pickVoice, menuVoices, bestEnglishVoice } from './voices.js';
import { speechErrorAction } from './speech-errors.js';

const RESTORE_LIVE_MS = 1000;  // long after the accessibility tree has seen the change
const REANNOUNCE_GAP_MS = 150; // an empty live region for this long makes the same text news again
const RETRY_MS = 300;          // a failed utterance is tried again after this
const CLEAR_FALLBACK_MS = 15000; // long after VoiceOver has read it: then it is not met again while swiping
const STUCK_MS = 30000;        // longer than any caption takes to say (20 words at rate 0.5: ~16 s)

export class Speech {
  /** onFailed({text, error}): speech failed twice for a caption, which went to VoiceOver instead. */
  constructor({ captionEl, rateInput, voiceSelect, srOnlyInput, onFailed = null }) {
    this.synth = 'speechSynthesis' in window ? window.speechSynthesis : null;
    this.captionEl = captionEl;
    this.rateInput = rateInput;
    this.voiceSelect = voiceSelect;
    this.srOnlyInput = srOnlyInput;
    this.onFailed = onFailed;
    this.lastSpoken = null;
    this.current = null;       // the utterance being spoken (kept so Safari doesn't drop its events)
    this.currentSince = 0;
    this.liveTimer = 0;
    this.pendingSpeak = 0;     // a speak() waiting (after a cancel, or a retry)
    this.generation = 0;       // bumped by stop(): events of older utterances are ignored
    this.fallbackEl = null;
    this.fallbackTimer = 0;
    this.fallbackGap = 0;

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
      this.fallbackEl = fallbackRegion(captionEl);
      this.#populateVoices();
      this.synth.addEventListener?.('voiceschanged', () => this.#populateVoices());
    }
  }

  get screenReaderOnly() { return this.srOnlyInput.checked || !this.synth; }
  get speaking() { return !!this.synth && (this.synth.speaking || this.synth.pending || !!this.pendingSpeak); }

  /**
   * Call inside every user tap. iOS lets speech start only from a gesture, and can take that back
   * while the app is in the background, so each tap renews it with an empty utterance (silent).
   * Not while one of our captions is being read (it would queue behind it for nothing); but a read
   * whose `end` never came (iOS sometimes drops it) stops counting after STUCK_MS, and the
   * synthesizer's own `speaking` flag is not trusted for the same reason.
   */
  unlock() {
    if (!this.synth) return;
    if (this.pendingSpeak || (this.current && performance.now() - this.currentSince < STUCK_MS)) return;
    try {
      this.synth.speak(new SpeechSynthesisUtterance(''));
    } catch {
      // nothing to unlock
    }
  }

  /** Shows a new caption in #caption and says it once (see the sound design above). */
  present(text, { auto = false } = {}) {
    this.#clearFallback();
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
    this.generation++;
    clearTimeout(this.pendingSpeak);
    this.pendingSpeak = 0;
    if (this.synth) this.synth.cancel();
    this.current = null;
  }

  say(text) {
    if (!this.synth || !text) return;
    const busy = this.synth.speaking || this.synth.pending;
    this.stop();
    this.lastSpoken = text;
    // Safari drops a speak() that comes right after cancel() of a running utterance.
    this.#speakLater(text, 0, true, busy ? 60 : 0);
  }

  #speakLater(text, attempt, withVoice, delay) {
    const generation = this.generation;
    const go = () => {
      this.pendingSpeak = 0;
      if (generation === this.generation) this.#speak(text, attempt, withVoice);
    };
    if (delay) this.pendingSpeak = setTimeout(go, delay);
    else go();
  }

  #speak(text, attempt, withVoice) {
    const utterance = new SpeechSynthesisUtterance(text);
    utterance.rate = this.rate;
    const voice = withVoice ? this.#voice() : null;
    if (voice) {
      utterance.voice = voice;
      utterance.lang = voice.lang;
    } else {
      utterance.lang = 'en-US';  // captions are English whatever the system language is
    }
    const generation = this.generation;
    this.current = utterance;
    this.currentSince = performance.now();
    utterance.addEventListener('end', () => { if (this.current === utterance) this.current = null; });
    const failed = (error) => {
      if (this.current === utterance) this.current = null;
      if (generation !== this.generation) return;  // a newer caption or Stop took over
      const action = speechErrorAction(error, attempt);
      if (action === 'retry' || action === 'retry-any-voice') {
        this.#speakLater(text, attempt + 1, action === 'retry', RETRY_MS);
      } else if (action === 'fallback') {
        this.#fallback(text, error);
      }
    };
    utterance.addEventListener('error', (event) => failed(event.error));
    try {
      this.synth.speak(utterance);
    } catch {
      failed('synthesis-failed');
    }
  }

  /** Speech failed: VoiceOver (or the screen) gets the caption instead, once. */
  #fallback(text, error) {
    const el = this.fallbackEl;
    const same = el.textContent === text;
    this.#clearFallback();
    if (same) {
      // Same words again (Repeat): empty for a moment so the text is a change again.
      this.fallbackGap = setTimeout(() => { el.textContent = text; }, REANNOUNCE_GAP_MS);
    } else {
      el.textContent = text;
    }
    this.fallbackTimer = setTimeout(() => this.#clearFallback(), CLEAR_FALLBACK_MS);
    if (this.onFailed) this.onFailed({ text, error });
  }

  /** Empties the fallback region (removing text announces nothing). */
  #clearFallback() {
    clearTimeout(this.fallbackTimer);
    clearTimeout(this.fallbackGap);
    if (this.fallbackEl) this.fallbackEl.textContent = '';
  }

  #voice() {
    if (!this.synth) return null;
    return pickVoice(this.synth.getVoices(), this.voiceURI);
  }

  #populateVoices() {
    const all = this.synth.getVoices();
    const voices = menuVoices(all);
    const best = bestEnglishVoice(all);
    const select = this.voiceSelect;
    // The empty choice is ours, not the system's: name the voice it stands for.
    select.replaceChildren(new Option(best ? `Automatic: ${best.name} (${best.lang})` : 'System default', ''));
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

/**
 * The speech-failure live region (#speech-fallback: index.html may have it; else it is made here,
 * after #caption). Made empty at start-up: a live region must be in the accessibility tree before
 * its text changes, or VoiceOver may not announce the first change.
 */
function fallbackRegion(captionEl) {
  let el = document.getElementById('speech-fallback');
  if (!el) {
    el = document.createElement('p');
    el.id = 'speech-fallback';
    el.className = 'visually-hidden';
    el.setAttribute('aria-live', 'polite');
    el.setAttribute('aria-atomic', 'true');
    captionEl.after(el);
  }
  return el;
}
