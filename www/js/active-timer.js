// A timeout that counts only the time the page was running. iOS suspends a backgrounded page
// and its worker; timers that came due then fire the moment it returns, so a plain setTimeout
// watchdog would blame the GPU for the minutes the phone spent in a pocket. This one advances in
// small ticks and does not count a gap between ticks longer than `maxGapMs` (the page was frozen),
// and it is paused outright while the page is hidden.

export class ActiveTimeout {
  /**
   * ms: active milliseconds until `onFire`. clock: {now, setInterval, clearInterval} (tests pass a
   * fake one). tickMs: how often time is counted; maxGapMs: a longer gap is a suspension.
   */
  constructor(ms, onFire, { clock = globalThis, now = () => performance.now(), tickMs = 500, maxGapMs = 2500 } = {}) {
    this.ms = ms;
    this.onFire = onFire;
    this.clock = clock;
    this.now = now;
    this.tickMs = tickMs;
    this.maxGapMs = maxGapMs;
    this.elapsed = 0;
    this.last = 0;
    this.timer = 0;
    this.running = false;  // started and not yet fired or stopped (paused counts as running)
  }

  /** (Re)starts the count from zero. */
  start() {
    this.stop();
    this.running = true;
    this.elapsed = 0;
    this.#arm();
  }

  /** Stops counting until `resume` (the page was hidden). */
  pause() {
    if (this.timer) this.#tick();
    this.#disarm();
  }

  resume() {
    if (this.running && !this.timer) this.#arm();
  }

  stop() {
    this.running = false;
    this.#disarm();
  }

  get active() { return this.running; }

  #arm() {
    this.last = this.now();
    this.timer = this.clock.setInterval(() => this.#tick(), this.tickMs);
  }

  #disarm() {
    if (this.timer) this.clock.clearInterval(this.timer);
    this.timer = 0;
  }

  #tick() {
    const t = this.now();
    const gap = t - this.last;
    this.last = t;
    if (gap > 0 && gap <= this.maxGapMs) this.elapsed += gap;
    if (this.running && this.elapsed >= this.ms) {
      this.stop();
      this.onFire();
    }
  }
}
