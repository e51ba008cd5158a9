// Numbers as VoiceOver reads them well: "12.3 MB", "about 20 s left" (decimal megabytes, like iOS).

export function formatBytes(n) {
  if (!Number.isFinite(n) || n < 0) return '';
  if (n < 1e6) return `${Math.round(n / 1e3)} kB`;
  if (n < 1e9) {
    const mb = n / 1e6;
    return `${mb < 100 ? mb.toFixed(1) : Math.round(mb)} MB`;
  }
  return `${(n / 1e9).toFixed(2)} GB`;
}

export function formatTimeLeft(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return '';
  if (seconds < 5) return 'a few seconds left';
  if (seconds < 20) return `about ${Math.round(seconds)} s left`;
  if (seconds < 60) return `about ${Math.round(seconds / 5) * 5} s left`;
  if (seconds < 3600) {
    const min = Math.round(seconds / 60);
    return `about ${min} min left`;
  }
  const h = Math.floor(seconds / 3600);
  const min = Math.round((seconds % 3600) / 60);
  return `about ${h} h ${min} min left`;
}

export function percent(loaded, total) {
  if (!total) return null;
  return Math.min(100, Math.floor((loaded / total) * 100));
}

/** A file name for display: the last path segment of a URL (or "file:NAME"). */
export function modelName(url) {
  if (!url) return 'model';
  if (url.startsWith('file:')) return url.slice(5);
  try {
    const path = new URL(url, location.href).pathname;
    return decodeURIComponent(path.slice(path.lastIndexOf('/') + 1)) || url;
  } catch {
    return url;
  }
}
