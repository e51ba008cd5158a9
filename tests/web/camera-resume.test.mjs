// What the camera does when the page is shown again (resumeAction in www/js/camera.js): iOS mutes
// the capture track in the background (WebKit PR 32807) and may not unmute it.
import test from 'node:test';
import assert from 'node:assert/strict';
import { resumeAction } from '../../www/js/camera.js';

const base = { wanted: true, hidden: false, reason: null, trackState: 'live' };

test('a live track (maybe muted or stalled) is checked: it gets a moment to deliver, then a restart', () => {
  assert.equal(resumeAction(base), 'check');
  assert.equal(resumeAction({ ...base, reason: 'muted' }), 'check');
});

test('no track, or an ended one (iOS stopped it), is started again', () => {
  assert.equal(resumeAction({ ...base, trackState: null }), 'start');
  assert.equal(resumeAction({ ...base, trackState: 'ended', reason: 'ended' }), 'start');
  assert.equal(resumeAction({ ...base, trackState: null, reason: 'busy' }), 'start');
});

test('nothing while hidden, for a camera never started or stopped, or when restarting cannot help', () => {
  assert.equal(resumeAction({ ...base, hidden: true }), 'none');
  assert.equal(resumeAction({ ...base, wanted: false }), 'none');
  assert.equal(resumeAction({ ...base, trackState: null, reason: 'denied' }), 'none');
  assert.equal(resumeAction({ ...base, trackState: null, reason: 'unavailable' }), 'none');
});
