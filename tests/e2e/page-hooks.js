// Injected before any page script (Playwright addInitScript; for WebDriver it is run by hand).
// Records, without changing behaviour: speechSynthesis.speak calls, every message to and from
// dedicated workers (small fields only; the last caption frame sent to a worker is copied),
// clicks on #capture, and changes of body[data-state], #progress and #caption.
(() => {
  if (window.__e2e) return;
  const now = () => performance.now();
  const E = (window.__e2e = {
    spoken: [],
    fromWorker: [],
    toWorker: [],
    lastSent: null,
    taps: [],
    states: [],
    progress: [],
    captions: [],
    errors: [],
    csp: [],
  });

  // Content-Security-Policy violations in the page (a worker's go to its console, collected by the
  // runner). Also reported to the runner through an exposed binding, which survives navigations.
  try {
    document.addEventListener(
      'securitypolicyviolation',
      (e) => {
        const v = {
          t: now(),
          directive: e.effectiveDirective || e.violatedDirective,
          blockedURI: e.blockedURI,
          sample: e.sample,
          source: e.sourceFile,
          line: e.lineNumber,
          disposition: e.disposition,
          page: location.href,
        };
        E.csp.push(v);
        try {
          if (typeof window.__e2eCspViolation === 'function') window.__e2eCspViolation(v).catch(() => {});
        } catch {}
      },
      true,
    );
  } catch (e) {
    E.errors.push('csp hook: ' + e);
  }

  // speechSynthesis.speak (headless Chromium has no voices and errors "not-allowed": record the calls).
  try {
    const proto = window.SpeechSynthesis && window.SpeechSynthesis.prototype;
    if (proto && proto.speak) {
      const orig = proto.speak;
      proto.speak = function (u) {
        E.spoken.push({ t: now(), text: u && u.text, lang: u && u.lang });
        try {
          return orig.call(this, u);
        } catch (e) {
          E.errors.push('speak threw: ' + e);
        }
      };
    }
  } catch (e) {
    E.errors.push('speak hook: ' + e);
  }

  const small = (d) => {
    if (!d || typeof d !== 'object') return { value: d };
    const o = {};
    for (const k of Object.keys(d)) {
      const v = d[k];
      if (v == null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') o[k] = v;
      else if (Array.isArray(v) && v.length <= 4096 && v.every((x) => typeof x === 'number')) o[k] = v.slice();
      else if (k === 'model' || k === 'stored' || k === 'source') {
        try {
          o[k] = JSON.parse(JSON.stringify(v, (kk, vv) => (vv instanceof Blob ? '[Blob ' + vv.size + ']' : vv)));
        } catch {
          o[k] = String(v);
        }
      } else o[k] = '[' + Object.prototype.toString.call(v).slice(8, -1) + ']';
    }
    return o;
  };

  try {
    const W = window.Worker;
    if (W) {
      const Wrapped = class Worker extends W {
        constructor(...args) {
          super(...args);
          this.__url = String(args[0]);
          this.addEventListener('message', (e) => {
            E.fromWorker.push({ t: now(), ...small(e.data) });
          });
          this.addEventListener('error', (e) => {
            E.errors.push('worker error: ' + (e.message || e));
          });
        }
        postMessage(...args) {
          try {
            const m = args[0];
            E.toWorker.push({ t: now(), ...small(m) });
            if (m && m.type === 'caption' && m.pixels) {
              let px = m.pixels;
              px = px instanceof ArrayBuffer ? new Uint8Array(px) : new Uint8Array(px.buffer, px.byteOffset, px.byteLength);
              E.lastSent = { width: m.width, height: m.height, rgba: px.slice(), t: now() };
            }
          } catch (e) {
            E.errors.push('postMessage hook: ' + e);
          }
          return super.postMessage(...args);
        }
      };
      window.Worker = Wrapped;
    }
  } catch (e) {
    E.errors.push('worker hook: ' + e);
  }

  document.addEventListener(
    'click',
    (e) => {
      const t = e.target;
      if (t && t.closest && t.closest('#capture')) E.taps.push(now());
    },
    true,
  );

  let lastState, lastProg, lastCap;
  const scan = () => {
    const b = document.body;
    const s = b && b.dataset ? b.dataset.state : undefined;
    if (s !== lastState) {
      lastState = s;
      E.states.push({ t: now(), state: s });
    }
    const p = document.getElementById('progress');
    if (p) {
      const v = {
        value: p.getAttribute('value') ?? (p.value !== undefined ? String(p.value) : null),
        max: p.getAttribute('max'),
        text: p.getAttribute('aria-valuetext'),
        now: p.getAttribute('aria-valuenow'),
      };
      const k = JSON.stringify(v);
      if (k !== lastProg) {
        lastProg = k;
        E.progress.push({ t: now(), ...v });
      }
    }
    const c = document.getElementById('caption');
    if (c) {
      const text = c.textContent;
      if (text !== lastCap) {
        lastCap = text;
        E.captions.push({ t: now(), text });
      }
    }
  };
  new MutationObserver(scan).observe(document, {
    subtree: true,
    childList: true,
    characterData: true,
    attributes: true,
    attributeFilter: ['data-state', 'value', 'max', 'aria-valuetext', 'aria-valuenow'],
  });
  // <progress>.value set by script is reflected as an attribute, but poll too in case it is not.
  setInterval(scan, 50);

  E.b64 = (u8) => {
    let s = '';
    for (let i = 0; i < u8.length; i += 0x8000) s += String.fromCharCode.apply(null, u8.subarray(i, i + 0x8000));
    return btoa(s);
  };
  /** The frame the page captioned last: window.edgecap.lastFrame, and the pixels sent to the worker. */
  E.frames = () => {
    const out = {};
    const lf = window.edgecap && window.edgecap.lastFrame;
    if (lf && lf.rgba) {
      const px = lf.rgba instanceof Uint8Array || lf.rgba instanceof Uint8ClampedArray ? lf.rgba : new Uint8Array(lf.rgba);
      out.lastFrame = { width: lf.width, height: lf.height, b64: E.b64(new Uint8Array(px.buffer, px.byteOffset, px.byteLength)) };
    }
    if (E.lastSent) out.lastSent = { width: E.lastSent.width, height: E.lastSent.height, b64: E.b64(E.lastSent.rgba) };
    return out;
  };
})();
