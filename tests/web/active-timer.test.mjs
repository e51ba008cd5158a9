// The suspension-aware watchdog (www/js/active-timer.js) on a fake clock: a page frozen or hidden
// (iOS in the background) must not make a watchdog fire on return.
import test from 'node:test';
import assert from 'node:assert/strict';
import { ActiveTimeout } from '../../www/js/active-timer.js';

/** A fake clock whose intervals run when time is advanced, unless the page is "frozen". */
function fakeClock() {
  let t = 0;
  let id = 0;
  const timers = new Map();
  return {
    now: () => t,
    setInterval(fn, ms) { timers.set(++id, { fn, ms, due: t + ms }); return id; },
    clearInterval(i) { timers.delete(i); },
    /** Runs time forward; frozen: no callbacks meanwhile (they run late, once, on thaw). */
    advance(ms, { frozen = false } = {}) {
      const end = t + ms;
      if (frozen) {
        t = end;
        for (const [i, tm] of [...timers]) if (timers.has(i) && tm.due <= t) { tm.due = t + tm.ms; tm.fn(); }
        return;
      }
      for (;;) {
        const due = [...timers.entries()].filter(([, tm]) => tm.due <= end).sort((a, b) => a[1].due - b[1].due)[0];
        if (!due) break;
        const [i, tm] = due;
        t = tm.due;
        tm.due += tm.ms;
        if (timers.has(i)) tm.fn();
      }
      t = end;
    },
  };
}

function make(ms) {
  const clock = fakeClock();
  let fired = 0;
  const timer = new ActiveTimeout(ms, () => fired++, { clock, now: clock.now, tickMs: 500, maxGapMs: 2500 });
  return { clock, timer, fired: () => fired };
}

test('fires after the active time has passed, once', () => {
  const { clock, timer, fired } = make(10000);
  timer.start();
  clock.advance(9000);
  assert.equal(fired(), 0);
  clock.advance(1500);
  assert.equal(fired(), 1);
  clock.advance(60000);
  assert.equal(fired(), 1);
  assert.equal(timer.active, false);
});

test('a frozen page (40 s with no timers) does not count: the old setTimeout would have fired', () => {
  const { clock, timer, fired } = make(30000);
  timer.start();
  clock.advance(5000);
  clock.advance(40000, { frozen: true });
  assert.equal(fired(), 0, 'the 40 s freeze was not counted');
  clock.advance(20000);
  assert.equal(fired(), 0, '5 + 20 s active < 30 s');
  clock.advance(6000);
  assert.equal(fired(), 1);
});

test('paused while hidden, resumed on return', () => {
  const { clock, timer, fired } = make(10000);
  timer.start();
  clock.advance(8000);
  timer.pause();
  clock.advance(120000);
  assert.equal(fired(), 0);
  timer.resume();
  clock.advance(1500);
  assert.equal(fired(), 0);
  clock.advance(1000);
  assert.equal(fired(), 1);
});

test('start() restarts the count; stop() means it never fires', () => {
  const { clock, timer, fired } = make(10000);
  timer.start();
  clock.advance(9000);
  timer.start();
  clock.advance(9000);
  assert.equal(fired(), 0);
  timer.stop();
  timer.resume();  // a stopped timer stays stopped
  clock.advance(60000);
  assert.equal(fired(), 0);
});
