// The offline app shell. A build hook (scripts/precache.sh) rewrites the next two lines with the
// list of built files and a build hash; keep them exactly as they are.
const PRECACHE = [/*PRECACHE*/];
const BUILD = "/*BUILD*/";

// Not rewritten (development): cache the start page now and everything else as it is fetched,
// network first so edits show up, cache when offline.
const DEV = BUILD.startsWith('/*');
const CACHE = `edgecap-${DEV ? 'dev' : BUILD}`;
const SHELL = DEV ? ['./', 'index.html'] : PRECACHE;

self.addEventListener('install', (event) => {
  // No skipWaiting here: a new version waits until the page asks (see js/sw-update.js), so a
  // running app never gets files from two builds.
  // cache: 'reload' so a long-lived HTTP cache can't put an older build's file in this build's cache.
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL.map((url) => new Request(url, { cache: 'reload' })))));
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith('edgecap-') && name !== CACHE) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

self.addEventListener('message', (event) => {
  if (event.data && event.data.type === 'skip-waiting') self.skipWaiting();
});

// Cross-origin isolation for hosts that do not send the headers themselves (`trunk serve` does:
// Trunk.toml): every same-origin response this worker serves carries COOP/COEP, so from the second
// visit on (the first page load comes before this worker controls it) the page is isolated and
// CPU captions run on a pool of threads (worker/threads.js). No reload is forced to get there: a
// page reloading itself under VoiceOver loses the reader's place, and one that can never be
// isolated would reload for ever. `require-corp`, not `credentialless`: WebKit isolates only with
// the former. Worker scripts get the headers too, which Safari has wanted.
const ISOLATION = [
  ['Cross-Origin-Opener-Policy', 'same-origin'],
  ['Cross-Origin-Embedder-Policy', 'require-corp'],
  ['Cross-Origin-Resource-Policy', 'same-origin'],
];

function withIsolation(response) {
  if (!response || response.type !== 'basic' || response.status === 0) return response;
  if (ISOLATION.every(([name]) => response.headers.has(name))) return response;
  const headers = new Headers(response.headers);
  for (const [name, value] of ISOLATION) {
    if (!headers.has(name)) headers.set(name, value);
  }
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
}

function isModelRequest(request, url) {
  // Models are big, resumable and stored by the worker in OPFS: never cached here, and Range
  // requests must reach the server untouched (a cached 200 would break resuming).
  return request.headers.has('range') || /\.gguf($|\.)/i.test(url.pathname);
}

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (isModelRequest(request, url)) return;
  event.respondWith((DEV ? networkFirst(request) : cacheFirst(request)).then(withIsolation));
});

async function fromCache(request) {
  const cache = await caches.open(CACHE);
  // Navigations carry the app's query (?model=, ?backend=): the shell is the same page.
  if (request.mode === 'navigate') {
    return (await cache.match(request, { ignoreSearch: true })) ||
      (await cache.match('index.html')) || (await cache.match('./'));
  }
  return cache.match(request);
}

async function cacheFirst(request) {
  const hit = await fromCache(request);
  if (hit) return hit;
  return fetch(request);  // not an app file: the network, uncached
}

async function networkFirst(request) {
  try {
    const response = await fetch(request);
    if (response.ok && response.type === 'basic') {
      const copy = response.clone();
      caches.open(CACHE).then((cache) => cache.put(request, copy)).catch(() => {});
    }
    return response;
  } catch (err) {
    const hit = await fromCache(request);
    if (hit) return hit;
    throw err;
  }
}
