// Automatic mode: describes the camera view whenever it is news to the user, and keeps up while the
// user walks.
//
// What gets described (decideLook, pure; tests/web/auto-mode.test.mjs). Each look takes a 32×24
// grey thumbnail of the view (frame-diff.js) and compares it with two others: the view last
// described (`drift`) and the previous look (`step`). It captions when
//   - nothing has been described yet;
//   - drift > CHANGE_THRESHOLD: the user turned to something else;
//   - the view has kept changing: step > MOTION_THRESHOLD on KEEP_MOVING_LOOKS looks in a row since
//     the last caption, and it has not come back to the view described (drift > MOTION_THRESHOLD).
// The last rule is for walking. Comparing only with the last view described misses a view that
// changes all the time yet never differs from that one by CHANGE_THRESHOLD over the whole
// thumbnail: a street or a corridor walked along, or Chromium's moving fake camera (a sector
// sweeping round every 601 ms on a still picture). Measured in headless Chromium: its looks 400 ms
// apart differ by 3–9 grey levels, but for each frame the most any later frame differed from it
// was 5.4–9.6 depending on the sweep's phase, and 8 or less for 56% of frames (those taken
// mid-sweep); once such a frame had been described, automatic mode said nothing more, for good
// (0 captions in 120 s). Each rule needs the view to differ by well over sensor noise and hand
// tremble, so a still scene is not described again and again (nor a repeated caption said again).
//
// When it looks (AutoMode; the clock is injectable for tests):
//   - at most once every `intervalMs` (a tap counts as a look), and as soon as possible after
//     that: a look that falls due while a caption is being made or spoken happens when the app is
//     free again (canLook is checked every POLL_MS), not a whole interval later as with a fixed
//     setInterval, where a caption plus its speech longer than the interval cost two intervals;
//   - our own voice is let finish (`speaking`), but a speaking flag still up after SPEECH_STUCK_MS
//     is taken to be stuck (iOS Safari does not always fire an utterance's `end`:
//     phetsims/scenery#1315, cboard-org/cboard#1415) and no longer holds automatic mode back; the
//     next caption's speech cancels it.
import { thumbnail, meanAbsDiff, CHANGE_THRESHOLD, MOTION_THRESHOLD } from './frame-diff.js';

/** Looks in a row that must each see the view move before a moving view is described again. */
export const KEEP_MOVING_LOOKS = 2;
/** While the app is busy (captioning, speaking), whether it is free again is checked this often (cheap: no thumbnail). */
export const POLL_MS = 250;
/**
 * Longer than any caption takes to say: at most 20 tokens (the engine's limit), about 20 words,
 * take about 16 s at the slowest rate the app offers (0.5); a `speaking` flag up this long is stuck.
 */
export const SPEECH_STUCK_MS = 30000;

/**
 * Whether to describe the view now. thumb: this look's thumbnail (null: unknown); described: the
 * thumbnail of the view last described (null: none yet); previous: the previous look's (null: this
 * is the first look since automatic mode started); movingLooks: the looks in a row since the last
 * caption that saw the view move. Returns {send, reason ('first'|'unknown'|'changed'|'kept-moving'|
 * null), drift, step, movingLooks (the new count, before any reset for a caption sent)}.
 */
export function decideLook({ thumb, described, previous, movingLooks = 0 }, {
  change = CHANGE_THRESHOLD, motion = MOTION_THRESHOLD, keepMoving = KEEP_MOVING_LOOKS,
} = {}) {
  const drift = thumb && described ? meanAbsDiff(thumb, described) : null;
  const step = thumb && previous ? meanAbsDiff(thumb, previous) : null;
  const moving = step !== null && step > motion ? movingLooks + 1 : 0;
  const out = (send, reason) => ({ send, reason, drift, step, movingLooks: moving });
  if (!thumb) return out(true, 'unknown');  // no picture to judge by: the app's grab decides
  if (!described) return out(true, 'first');
  if (drift > change) return out(true, 'changed');
  if (moving >= keepMoving && drift > motion) return out(true, 'kept-moving');
  return out(false, null);
}

export class AutoMode {
  /**
   * intervalMs: the least time between two looks. checkbox: the #auto switch. video: the camera's
   * <video>. canLook(): true when a caption may start now (ready, camera live). speaking(): our
   * voice is reading (optional; without it canLook is expected to include that, and a stuck flag
   * then holds automatic mode back for good). grab(): a frame of the live camera. send(frame):
   * starts its caption. onHold(on): hold the wake lock while on. Tests also pass thumb() (the
   * current view's thumbnail), clock {now, setTimeout, clearTimeout} and onLook(decision).
   */
  constructor({
    intervalMs, checkbox, video, canLook, speaking = null, grab, send, onHold = () => {},
    thumb = null, clock = null, onLook = null,
  }) {
    this.intervalMs = intervalMs;
    this.checkbox = checkbox;
    this.video = video;
    this.canLook = canLook;
    this.speaking = speaking;
    this.grab = grab;
    this.send = send;
    this.onHold = onHold;
    this.onLook = onLook;  // (decision) after each look: for diagnostics and tests
    this.thumbOf = thumb || (() => thumbnail(video, video.videoWidth, video.videoHeight));
    this.clock = clock || {
      now: () => performance.now(),
      setTimeout: (f, ms) => setTimeout(f, ms),
      clearTimeout: (t) => clearTimeout(t),
    };
    this.timer = 0;
    this.run = 0;              // counts stop()s: a check that stopped the timer does not set it again
    this.described = null;     // thumbnail of the last frame sent, whoever sent it
    this.previous = null;      // thumbnail of the previous look
    this.movingLooks = 0;
    this.lastLookAt = null;    // clock time of the last look (or frame sent)
    this.speakingSince = null; // clock time since when `speaking` has been up, while free otherwise
    this.lastDecision = null;
  }

  get enabled() { return this.checkbox.checked; }

  get running() { return !!this.timer; }

  /** Starts or stops looking, given whether the app could caption at all (`active`). */
  schedule(active) {
    const hidden = typeof document !== 'undefined' && document.hidden;
    const on = this.enabled && !hidden && active;
    this.onHold(this.enabled);
    if (on && !this.timer) {
      this.timer = -1;  // running: a schedule() from inside the first check does not start a second
      this.tick();
    }
    else if (!on) this.stop();
  }

  /** Stops looking. The next start looks at once, and judges motion afresh. */
  stop() {
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = 0;
    this.run++;
    this.previous = null;
    this.movingLooks = 0;
    this.lastLookAt = null;
    this.speakingSince = null;
  }

  /** Remembers what a frame looked like when it was sent (also for taps and photos). */
  noteSent(canvas, width, height) {
    this.noteThumb(canvas ? thumbnail(canvas, width, height) : null);
  }

  /** noteSent with the thumbnail already made (null: unknown). A sent frame counts as a look. */
  noteThumb(thumb) {
    this.described = thumb;
    this.movingLooks = 0;
    if (thumb) this.previous = thumb;
    this.lastLookAt = this.clock.now();
  }

  forget() {
    this.described = null;
    this.previous = null;
    this.movingLooks = 0;
  }

  /** Looks if a look is due and the app is free; then sets the timer for the next check. */
  tick() {
    const run = this.run;
    const wait = this.#check(this.clock.now());
    // Stopped meanwhile (sending a caption can change the app's state), or started again inside.
    if (run !== this.run) return;
    this.timer = this.clock.setTimeout(() => this.tick(), wait);
  }

  /** Looks if it may; returns how long to wait before checking again (ms). */
  #check(now) {
    if (!this.canLook()) {
      this.speakingSince = null;
      return POLL_MS;
    }
    if (this.speaking && this.speaking()) {
      if (this.speakingSince === null) this.speakingSince = now;
      const stuckIn = this.speakingSince + SPEECH_STUCK_MS - now;
      if (stuckIn > 0) return Math.min(POLL_MS, stuckIn);
      // Speech that should have ended long ago: the flag is stuck; look anyway.
    } else {
      this.speakingSince = null;
    }
    if (this.lastLookAt !== null && now - this.lastLookAt < this.intervalMs) return this.lastLookAt + this.intervalMs - now;
    this.look(now);
    return this.intervalMs;
  }

  look(now = this.clock.now()) {
    const thumb = this.thumbOf();
    const d = decideLook({ thumb, described: this.described, previous: this.previous, movingLooks: this.movingLooks });
    this.lastLookAt = now;
    this.previous = thumb;
    this.movingLooks = d.movingLooks;
    this.lastDecision = d;
    if (this.onLook) this.onLook(d);
    if (d.send) {
      this.movingLooks = 0;
      this.speakingSince = null;
      this.send(this.grab());
    }
    return d;
  }
}
