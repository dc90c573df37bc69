/**
 * The demo's service worker: precaches the app shell so that the board opens with no network.
 * Built as its own entry (`/sw.js`, fixed name so that the browser can check it for updates);
 * vite.config.ts fills in the file list and version after the build has written every file.
 *
 * Why hand-written rather than vite-plugin-pwa/Workbox: the whole job is "precache the built
 * files, serve them cache-first, drop old caches", about fifty lines; workbox-build would add a
 * large dependency tree (its own Rollup, Babel, ...) to `npm install` for that.
 *
 * Invariants:
 * 1. Install succeeds only once every file of this build is cached (addAll is atomic), so a
 *    half-cached shell never takes control.
 * 2. The event data is not here: it lives in IndexedDB, written by the store. The cache holds
 *    code only, so a reload offline shows every local change because the log is local.
 * 3. /token and /sync are never cached: a token must be fresh, and the WebSocket is live.
 */

interface ExtendableEventLike extends Event {
  waitUntil(promise: Promise<unknown>): void;
}
interface FetchEventLike extends ExtendableEventLike {
  readonly request: Request;
  respondWith(response: Promise<Response>): void;
}
interface ServiceWorkerScopeLike {
  addEventListener(type: 'install' | 'activate', listener: (e: ExtendableEventLike) => void): void;
  addEventListener(type: 'fetch', listener: (e: FetchEventLike) => void): void;
  skipWaiting(): Promise<void>;
  readonly clients: { claim(): Promise<void> };
  readonly location: Location;
}

const scope = globalThis as unknown as ServiceWorkerScopeLike;

// Replaced after the build (vite.config.ts, precacheManifest): every built file (JSON in
// base64, safe inside whatever quotes the minifier picked) and a hash of them.
const PRECACHE: string[] = JSON.parse(atob('__PRECACHE_FILES__'));
const VERSION = '__PRECACHE_VERSION__';
const CACHE = `chronicle-demo-${VERSION}`;
const PREFIX = 'chronicle-demo-';
const SHELL = '/index.html';
const NETWORK_ONLY = new Set(['/token', '/sync']);

scope.addEventListener('install', (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      await cache.addAll(PRECACHE.map((path) => new Request(path, { cache: 'reload' })));
      await scope.skipWaiting();
    })(),
  );
});

scope.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      for (const key of await caches.keys()) {
        if (key.startsWith(PREFIX) && key !== CACHE) await caches.delete(key);
      }
      await scope.clients.claim();
    })(),
  );
});

scope.addEventListener('fetch', (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== 'GET' || url.origin !== scope.location.origin) return;
  if (NETWORK_ONLY.has(url.pathname)) return;
  event.respondWith(
    (async () => {
      const cache = await caches.open(CACHE);
      // Every page of the app is the one shell (query strings such as ?db= included).
      const key = request.mode === 'navigate' ? SHELL : url.pathname;
      const cached = await cache.match(key);
      return cached ?? fetch(request);
    })(),
  );
});
