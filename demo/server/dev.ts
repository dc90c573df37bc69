/**
 * `npm run dev`: the same process as `npm start` (sync server on SQLite in ./data, /token,
 * /sync), with Vite's dev server in place of the built files. No service worker in dev: the
 * app shell is Vite's on-demand modules, which only the production build can precache.
 */
import { join, resolve } from 'node:path';
import { createServer } from 'vite';
import type { LogEntry } from '../../src/server/index.ts';
import { handleToken, startSyncBackend } from './app.ts';
import { ROOT } from './build.ts';

const port = Number(process.env.PORT ?? 5173);
const host = process.env.HOST ?? '127.0.0.1';
const dataDir = resolve(process.env.CHRONICLE_DATA ?? 'data');

const backend = await startSyncBackend({
  dataDir,
  log: (entry: LogEntry) => {
    if (entry.level !== 'info') process.stderr.write(`${JSON.stringify(entry)}\n`);
  },
});

const vite = await createServer({
  configFile: join(ROOT, 'vite.config.ts'),
  server: {
    port,
    host,
    strictPort: true,
    // The page's WebSocket to /sync goes to the sync server, as in `npm start`.
    proxy: { '/sync': { target: `ws://127.0.0.1:${backend.target.port}`, ws: true } },
  },
  plugins: [
    {
      name: 'chronicle-demo-token',
      configureServer(server) {
        server.middlewares.use((req, res, next) => {
          if (!handleToken(backend, req, res)) next();
        });
      },
    },
  ],
});
await vite.listen();
console.log(`Chronicle demo (dev): sync server on SQLite in ${dataDir}`);
console.log(`\n  Open ${vite.resolvedUrls?.local[0] ?? `http://${host}:${port}/`}\n`);

const stop = () => {
  void Promise.allSettled([vite.close(), backend.close()]).then(() => process.exit(0));
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
