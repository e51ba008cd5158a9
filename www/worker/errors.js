// Errors as the page sees them: {type:"error", code, message}. Engine errors carry err.code
// already; browser errors (storage, network) are given the codes the page knows.
import { FromWorker } from '../js/protocol.js';

export function codedError(code, message) {
  const err = new Error(message);
  err.code = code;
  return err;
}

export function errorCode(err) {
  if (err && typeof err.code === 'string') return err.code;
  const name = err && err.name;
  if (name === 'QuotaExceededError') return 'storage-full';
  if (name === 'NoModificationAllowedError' || name === 'InvalidStateError' ||
      name === 'NotFoundError' || name === 'NotAllowedError' || name === 'SecurityError') return 'storage';
  if (err instanceof TypeError) return 'network';
  return 'internal';
}

export function errorMessage(err, code = errorCode(err)) {
  if (code === 'storage' && err && err.name === 'NoModificationAllowedError') {
    return 'The model file is in use by another edgecap tab or window. Close it and try again.';
  }
  return (err && err.message) || String(err);
}

/** Posts `err` to the page; `id` ties it to a caption request. */
export function postError(err, id) {
  const code = errorCode(err);
  const out = { type: FromWorker.ERROR, code, message: errorMessage(err, code) };
  if (err && err.retryable) out.retryable = true;  // trying again later may work (lost connection, 5xx)
  if (id !== undefined && id !== null) out.id = id;
  self.postMessage(out);
}
