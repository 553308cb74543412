/**
 * Worker spawning that also works when the entry module is TypeScript source.
 *
 * Built code (`dist/**.js`) starts workers directly. Under vitest or `node --import tsx`, the
 * entry is a `.ts` file, and on Node 20 a Worker cannot load it: neither vitest's transform nor
 * `execArgv: ['--import', 'tsx']` reaches the worker's entry module (it fails with
 * ERR_UNKNOWN_FILE_EXTENSION). What works: start the worker from a tiny evaluated bootstrap that
 * imports tsx's ESM API by absolute path, calls `register()` inside the worker, and then imports
 * the `.ts` entry. tsx is a dev dependency, so this path is only taken for `.ts` entries.
 */

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker, type WorkerOptions } from 'node:worker_threads';

/** Starts a worker running `entry`; `.ts` entries get the tsx bootstrap described above. */
export function startWorker(entry: URL, options: WorkerOptions = {}): Worker {
  if (!entry.pathname.endsWith('.ts')) return new Worker(entry, options);
  const bootstrap = [
    `import(${JSON.stringify(tsxEsmApiUrl())})`,
    `.then((api) => { api.register(); return import(${JSON.stringify(entry.href)}); });`,
  ].join('');
  return new Worker(bootstrap, { ...options, eval: true });
}

let tsxApiUrlCached: string | null = null;

/** file: URL of tsx's ESM API module, resolved from this package (not from the cwd). */
function tsxEsmApiUrl(): string {
  if (tsxApiUrlCached !== null) return tsxApiUrlCached;
  const require = createRequire(import.meta.url);
  // `require.resolve` picks the export's CommonJS file; the ESM file sits beside it with the
  // same name (tsx's export map: ./esm/api -> dist/esm/api/index.{cjs,mjs}).
  const esmPath = require.resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs');
  if (!existsSync(esmPath)) throw new Error(`tsx ESM API not found at ${esmPath}`);
  tsxApiUrlCached = pathToFileURL(esmPath).href;
  return tsxApiUrlCached;
}
