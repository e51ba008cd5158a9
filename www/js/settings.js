// Remembered choices (rate, voice, …). localStorage can throw (storage disabled, quota): the app
// then simply forgets between visits.
const PREFIX = 'edgecap.';

export function loadSetting(key, fallback) {
  try {
    const raw = localStorage.getItem(PREFIX + key);
    return raw === null ? fallback : JSON.parse(raw);
  } catch {
    return fallback;
  }
}

export function saveSetting(key, value) {
  try {
    localStorage.setItem(PREFIX + key, JSON.stringify(value));
  } catch {
    // not remembered; nothing else depends on it
  }
}
