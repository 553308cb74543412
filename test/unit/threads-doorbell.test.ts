import { spawn, spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { loadNativeAddon, nativeAddonPath, packageRoot } from '../../src/native/addon.js';
import { threadDoorbell } from '../../src/threads/doorbell.js';
import { createRingBuffer, RingConsumer, RingProducer } from '../../src/threads/ring.js';
import { until } from '../support/until.js';

const addon = loadNativeAddon();

/** Runs `source` (CommonJS) in a worker with the addon's path as `workerData.path`. */
function runWorker(source: string, data: Record<string, unknown> = {}): Promise<unknown[]> {
  const messages: unknown[] = [];
  const worker = new Worker(source, {
    eval: true,
    workerData: { path: nativeAddonPath(), ...data },
  });
  worker.on('message', (m) => messages.push(m));
  return new Promise((resolve, reject) => {
    worker.on('error', reject);
    worker.on('exit', (code) =>
      code === 0 ? resolve(messages) : reject(new Error(`exit ${code}`)),
    );
  });
}

function runNode(script: string): { status: number | null; stderr: string; ms: number } {
  const startedAt = performance.now();
  const r = spawnSync(process.execPath, ['-e', script], {
    cwd: packageRoot(),
    encoding: 'utf8',
    timeout: 20_000,
  });
  return { status: r.status, stderr: r.stderr, ms: performance.now() - startedAt };
}

describe.skipIf(addon === null)('native doorbells', () => {
  const a = addon as NonNullable<typeof addon>;

  it('runs the callback on the opening thread for rings from another thread, coalesced', async () => {
    let runs = 0;
    const id = a.bellOpen(() => {
      runs++;
    });
    try {
      // This thread blocks while the other rings 1,000 times: one run handles them all.
      const done = new Int32Array(new SharedArrayBuffer(4));
      const ringing = runWorker(
        `const { workerData } = require('node:worker_threads');
         const a = require(workerData.path);
         for (let i = 0; i < 1000; i++) if (!a.bellRing(workerData.id)) throw new Error('not rung');
         Atomics.store(workerData.done, 0, 1);
         Atomics.notify(workerData.done, 0);`,
        { id, done },
      );
      expect(Atomics.wait(done, 0, 0, 10_000)).not.toBe('timed-out');
      await ringing;
      await sleep(20);
      expect(runs).toBe(1);
      // A ring after a run gives another run.
      a.bellRing(id);
      await sleep(20);
      expect(runs).toBe(2);
    } finally {
      a.bellClose(id);
    }
    expect(a.bellRing(id)).toBe(false);
  });

  it('refuses bad arguments and a close of a bell that is not open', () => {
    expect(() => a.bellOpen(42 as unknown as () => void)).toThrow(TypeError);
    expect(() => a.bellRing(-1)).toThrow(/id/);
    expect(a.bellRing(1_000_000)).toBe(false);
    const id = a.bellOpen(() => undefined);
    a.bellClose(id);
    expect(() => a.bellClose(id)).toThrow(expect.objectContaining({ code: 'EBADF' }));
  });

  it('closes the bell of a thread that ends without closing it', async () => {
    const [id] = await runWorker(
      `const { workerData, parentPort } = require('node:worker_threads');
       const a = require(workerData.path);
       parentPort.postMessage(a.bellOpen(() => {}));`,
    );
    expect(typeof id).toBe('number');
    expect(a.bellRing(id as number)).toBe(false);
  });

  it('does not keep a process alive, and reports a throwing callback as uncaught', () => {
    const path = JSON.stringify(nativeAddonPath());
    const idle = runNode(`require(${path}).bellOpen(() => {});`);
    expect(idle.status).toBe(0);
    expect(idle.ms).toBeLessThan(10_000);
    const throwing = runNode(
      `const a = require(${path}); const id = a.bellOpen(() => { throw new Error('bell boom'); });
       a.bellRing(id); setTimeout(() => {}, 5000);`,
    );
    expect(throwing.status).not.toBe(0);
    expect(throwing.stderr).toContain('bell boom');
  });

  it('keeps the loop alive while a ring is awaited, and only then', async () => {
    const doorbell = JSON.stringify(
      new URL('../../src/threads/doorbell.ts', import.meta.url).pathname,
    );
    const path = JSON.stringify(nativeAddonPath());
    const script = (ringFromWorker: boolean): string =>
      `import { Worker } from 'node:worker_threads';
       const { threadDoorbell } = await import(${doorbell});
       const bell = threadDoorbell();
       const ring = bell.nextRing();
       if (${ringFromWorker}) {
         const source = 'const w = require("node:worker_threads").workerData; require(w.path).bellRing(w.id)';
         new Worker(source, { eval: true, execArgv: [], workerData: { path: ${path}, id: bell.id } });
       }
       console.log('waiting');
       await ring;
       console.log('rung');`;
    const start = (ringFromWorker: boolean) => {
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', '--input-type=module', '-e', script(ringFromWorker)],
        { cwd: packageRoot() },
      );
      let out = '';
      let err = '';
      child.stdout.on('data', (d) => {
        out += String(d);
      });
      child.stderr.on('data', (d) => {
        err += String(d);
      });
      const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
      return { child, exited, out: () => out, err: () => err };
    };
    // Nothing will ring: once waiting, the process stays alive (it would end at once, with an
    // "unsettled top-level await", if the bell did not hold the loop).
    const waiting = start(false);
    await until(
      'the child to wait',
      () => (waiting.out().includes('waiting') ? true : undefined),
      20_000,
    );
    expect(waiting.out()).toContain('waiting');
    await sleep(500);
    expect(waiting.child.exitCode, waiting.err()).toBeNull();
    waiting.child.kill();
    await waiting.exited;
    // Rung by a thread that ends right after: the ring is handled, and then the process ends.
    const rung = start(true);
    expect(await rung.exited, rung.err()).toBe(0);
    expect(rung.out()).toContain('rung');
  });

  it('limits the open bells of a process, and a closed bell frees its place', () => {
    const path = JSON.stringify(nativeAddonPath());
    const r = runNode(
      `const a = require(${path}); const ids = [];
       try { for (;;) ids.push(a.bellOpen(() => {})); } catch (e) { console.error('after', ids.length, e.code); }
       a.bellClose(ids[7]); const again = a.bellOpen(() => {});
       console.error('reopened', again === ids[7]);`,
    );
    expect(r.status).toBe(0);
    expect(r.stderr).toContain('after 1024 EMFILE');
    expect(r.stderr).toContain('reopened true');
  });

  it('wakes a ring consumer waiting on the main thread, and its close wakes it too', async () => {
    const bell = threadDoorbell();
    expect(bell).not.toBeNull();
    const sab = createRingBuffer(4096);
    const producer = new RingProducer(sab);
    const consumer = new RingConsumer(sab);
    const waiting = consumer.waitForDataAsync(10_000);
    // Another thread sees the consumer's bell published beside its SLEEPING flag (ring-layout.ts).
    const [seen] = await runWorker(
      `const { workerData, parentPort } = require('node:worker_threads');
       const ctl = new Int32Array(workerData.sab, 0, 48);
       parentPort.postMessage([Atomics.load(ctl, 1), Atomics.load(ctl, 3)]);`,
      { sab },
    );
    expect(seen).toEqual([1, bell?.word]);
    producer.tryPush(new Uint8Array([1, 2, 3]), 7);
    expect(await waiting).toBe('ok');
    expect(consumer.drain(() => undefined, 10)).toBe(1);
    const closing = consumer.waitForDataAsync(10_000);
    setTimeout(() => producer.close(), 5);
    expect(await closing).toBe('closed');
  });
});
