// The page's state table (www/js/state.js): every path the app takes, and the ones it must not.
import test from 'node:test';
import assert from 'node:assert/strict';
import { TRANSITIONS, STATES, next, Session, cameraInUse } from '../../www/js/state.js';

test('the states are the five of the test contract', () => {
  assert.deepEqual([...STATES].sort(), ['captioning', 'error', 'loading', 'ready', 'setup']);
});

test('every transition leads to a known state', () => {
  for (const [from, row] of Object.entries(TRANSITIONS)) {
    for (const [event, to] of Object.entries(row)) assert.ok(STATES.includes(to), `${from} --${event}--> ${to}`);
  }
});

test('first run: setup, download, ready, a caption, ready again', () => {
  const s = new Session();
  assert.equal(s.state, 'setup');
  assert.equal(s.apply('load'), 'loading');
  assert.equal(s.apply('ready'), 'ready');
  assert.equal(s.apply('caption'), 'captioning');
  assert.equal(s.apply('captioned'), 'ready');
});

test('the history keeps the transitions taken, bounded', () => {
  const s = new Session();
  s.apply('load');
  s.apply('ready');
  assert.deepEqual(s.history, [['setup', 'load', 'loading'], ['loading', 'ready', 'ready']]);
  for (let i = 0; i < 300; i++) { s.apply('caption'); s.apply('captioned'); }
  assert.equal(s.history.length, 200);
  assert.deepEqual(s.history.at(-1), ['captioning', 'captioned', 'ready']);
});

test('a paused download goes back to setup; a failure to error; Try again loads', () => {
  const s = new Session();
  s.apply('load');
  assert.equal(s.apply('aborted'), 'setup');
  s.apply('load');
  assert.equal(s.apply('fail'), 'error');
  assert.equal(s.apply('load'), 'loading');
});

test('a bad photo leaves the engine ready; a hung GPU reloads from captioning', () => {
  assert.equal(next('captioning', 'image-error'), 'ready');
  assert.equal(next('captioning', 'load'), 'loading');
});

test('delete is reachable from every state and always ends in setup', () => {
  for (const st of STATES) assert.equal(next(st, 'deleted'), 'setup');
});

test('transitions the app must never take throw', () => {
  assert.throws(() => next('setup', 'caption'), /no transition from setup/);
  assert.throws(() => next('loading', 'caption'), /no transition/);
  assert.throws(() => next('error', 'captioned'), /no transition/);
  assert.throws(() => next('ready', 'aborted'), /no transition/);
  assert.throws(() => next('nowhere', 'load'), /unknown state/);
  const s = new Session();
  assert.equal(s.can('caption'), false);
  assert.equal(s.state, 'setup', 'a refused event changes nothing');
});

test('the camera is in use only when ready or captioning', () => {
  assert.deepEqual(STATES.filter(cameraInUse).sort(), ['captioning', 'ready']);
});

test('captions: only the answer to the pending id is taken, once', () => {
  const s = new Session();
  const a = s.beginCaption({ width: 1 }, false);
  const b = s.beginCaption({ width: 2 }, true);
  assert.equal(b.id, a.id + 1);
  assert.equal(s.takePending(a.id), null, 'a replaced caption is ignored');
  assert.equal(s.takePending(b.id), b);
  assert.equal(s.takePending(b.id), null, 'an answer is taken once');
});

test('the GPU watchdog guards only a WebGPU the app chose itself', () => {
  const s = new Session({ backendPref: 'auto' });
  s.backend = 'webgpu';
  assert.equal(s.watchGpu, true);
  s.forcedBackend = 'cpu';
  assert.equal(s.watchGpu, false);
  assert.equal(s.loadBackend, 'cpu');
  const forced = new Session({ backendPref: 'webgpu' });
  forced.backend = 'webgpu';
  assert.equal(forced.watchGpu, false);
  assert.equal(forced.loadBackend, 'webgpu');
});

test("docs/web-app.md's state table is the code's table", async () => {
  const { readFile } = await import('node:fs/promises');
  const md = await readFile(new URL('../../docs/web-app.md', import.meta.url), 'utf8');
  const rows = [...md.matchAll(/^\| `(\w+)` \| (.+) \|$/gm)];
  const documented = Object.fromEntries(rows.map(([, st, cells]) => [st,
    Object.fromEntries([...cells.matchAll(/`([\w-]+)` → (\w+)/g)].map(([, ev, to]) => [ev, to]))]));
  assert.deepEqual(documented, JSON.parse(JSON.stringify(TRANSITIONS)));
});
