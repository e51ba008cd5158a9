// A tiny W3C WebDriver client over fetch, plus helpers to run Xvfb + WebKitWebDriver for WebKitGTK.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';

const ELEMENT = 'element-6066-11e4-a52e-4f735466cecf';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class WebDriverError extends Error {}

export class Session {
  constructor(base, id) {
    this.base = base;
    this.id = id;
  }
  static async create(base, capabilities, timeoutMs = 60000) {
    const r = await call(base, 'POST', '/session', { capabilities }, timeoutMs);
    return new Session(base, r.sessionId);
  }
  cmd(method, p, body, timeoutMs) {
    return call(this.base, method, `/session/${this.id}${p}`, body, timeoutMs);
  }
  goto(url) {
    return this.cmd('POST', '/url', { url }, 60000);
  }
  url() {
    return this.cmd('GET', '/url');
  }
  /** Runs `script` (a function body; use `arguments[i]`) synchronously. */
  exec(script, ...args) {
    return this.cmd('POST', '/execute/sync', { script, args }, 60000);
  }
  /** Runs an async function body: the last argument is the callback. */
  execAsync(script, ...args) {
    return this.cmd('POST', '/execute/async', { script, args }, 120000);
  }
  async find(css) {
    const r = await this.cmd('POST', '/element', { using: 'css selector', value: css });
    return r[ELEMENT];
  }
  click(el) {
    return this.cmd('POST', `/element/${el}/click`, {});
  }
  setTimeouts(t) {
    return this.cmd('POST', '/timeouts', t);
  }
  screenshot() {
    return this.cmd('GET', '/screenshot');
  }
  delete() {
    return call(this.base, 'DELETE', `/session/${this.id}`, undefined, 20000).catch(() => {});
  }
  /** Polls `script` (sync, returning a value) until `pred(value)` is truthy. */
  async waitFor(script, pred, { timeoutMs = 60000, intervalMs = 250, what = script } = {}) {
    const t0 = Date.now();
    let last;
    for (;;) {
      last = await this.exec(script);
      if (pred(last)) return last;
      if (Date.now() - t0 > timeoutMs) throw new WebDriverError(`timed out waiting for ${what}; last value ${JSON.stringify(last)}`);
      await sleep(intervalMs);
    }
  }
}

async function call(base, method, p, body, timeoutMs = 30000) {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), timeoutMs);
  try {
    const r = await fetch(base + p, {
      method,
      headers: body !== undefined ? { 'content-type': 'application/json; charset=utf-8' } : {},
      body: body !== undefined ? JSON.stringify(body) : undefined,
      signal: ctrl.signal,
    });
    const text = await r.text();
    let j;
    try {
      j = JSON.parse(text);
    } catch {
      throw new WebDriverError(`${method} ${p}: HTTP ${r.status}: ${text.slice(0, 300)}`);
    }
    if (!r.ok || (j.value && j.value.error)) {
      const v = j.value || {};
      throw new WebDriverError(`${method} ${p}: ${v.error || r.status}: ${v.message || text.slice(0, 300)}`);
    }
    return j.value;
  } catch (e) {
    if (e.name === 'AbortError') throw new WebDriverError(`${method} ${p}: no answer in ${timeoutMs} ms`);
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
    s.on('error', reject);
  });
}

async function waitPort(port, ms) {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    const ok = await new Promise((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => {
        c.destroy();
        resolve(true);
      });
      c.on('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`nothing listens on ${port} after ${ms} ms`);
}

// Children started here, killed (whole process group) if this process exits without stop().
const live = new Set();
process.on('exit', () => {
  for (const c of live) {
    try {
      process.kill(-c.pid, 'SIGKILL');
    } catch {}
  }
});
function track(child) {
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

function kill(child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {}
      resolve();
    }, 3000);
    child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    try {
      process.kill(-child.pid, 'SIGTERM'); // the whole process group (WebKitWebDriver's MiniBrowser too)
    } catch {
      try {
        child.kill('SIGTERM');
      } catch {}
    }
  });
}

/**
 * Starts Xvfb (unless $DISPLAY is usable and reuseDisplay) and WebKitWebDriver.
 * Returns {base, display, stop()}; stop() kills both process groups.
 */
export async function startWebKitDriver({ log = () => {}, logFile = null } = {}) {
  const procs = [];
  const out = logFile ? fs.openSync(logFile, 'a') : 'ignore';
  const stop = async () => {
    for (const p of procs.reverse()) await kill(p);
    if (typeof out === 'number') fs.closeSync(out);
  };
  try {
    // Find a free display number.
    let dnum = 99;
    while (fs.existsSync(`/tmp/.X${dnum}-lock`) || fs.existsSync(`/tmp/.X11-unix/X${dnum}`)) dnum++;
    const display = `:${dnum}`;
    const xvfb = spawn('Xvfb', [display, '-screen', '0', '1280x800x24', '-nolisten', 'tcp'], { stdio: ['ignore', out, out], detached: true });
    procs.push(track(xvfb));
    const t0 = Date.now();
    while (!fs.existsSync(`/tmp/.X11-unix/X${dnum}`)) {
      if (xvfb.exitCode !== null) throw new Error(`Xvfb ${display} exited with ${xvfb.exitCode}`);
      if (Date.now() - t0 > 15000) throw new Error(`Xvfb ${display} did not start`);
      await sleep(100);
    }
    log(`Xvfb on ${display}`);
    const port = await freePort();
    const xdg = fs.mkdtempSync('/tmp/e2e-wk-xdg-');
    fs.chmodSync(xdg, 0o700);
    const drv = spawn('WebKitWebDriver', [`--port=${port}`], {
      stdio: ['ignore', out, out],
      detached: true,
      env: { ...process.env, DISPLAY: display, XDG_RUNTIME_DIR: xdg, GDK_BACKEND: 'x11', NO_AT_BRIDGE: '1' },
    });
    procs.push(track(drv));
    await waitPort(port, 15000);
    log(`WebKitWebDriver on ${port}`);
    return { base: `http://127.0.0.1:${port}`, display, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

export const MINIBROWSER = '/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser';

export function webkitCapabilities({ mockCamera = true } = {}) {
  const args = ['--automation'];
  if (mockCamera) args.push('--enable-mock-capture-devices=true', '--features=+MockCaptureDevices');
  return {
    alwaysMatch: {
      'webkitgtk:browserOptions': { binary: MINIBROWSER, args },
      acceptInsecureCerts: true,
    },
  };
}
