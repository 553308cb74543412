/**
 * A private etcd for cluster tests: one member on free loopback ports with its data in a temp dir.
 * The binary is found on PATH, or Debian's `etcd-server` is installed with apt-get when missing
 * (CI machines start without it). Election timing is shortened (heartbeat 50 ms, election 500 ms)
 * so that etcd grants 1 s lease TTLs (its minimum TTL is 1.5 election timeouts, rounded up).
 * Test-only; owned by the test's thread.
 */

import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './frame-tap.js';

/** How long etcd may take to answer its health endpoint. */
const START_TIMEOUT_MS = 20_000;
const OUTPUT_KEPT_BYTES = 32 * 1024;

let available: boolean | null = null;

/** True when `etcd` can be run, installing Debian's etcd-server first if needed and possible. */
export function ensureEtcd(): boolean {
  if (available !== null) return available;
  const has = () => spawnSync('etcd', ['--version'], { stdio: 'ignore' }).status === 0;
  if (!has()) {
    try {
      execFileSync(
        'sh',
        [
          '-c',
          'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server',
        ],
        { stdio: 'ignore', timeout: 240_000 },
      );
    } catch {
      // Reported by the caller through the false return.
    }
  }
  available = has();
  return available;
}

/** One etcd member; `restart()` keeps its data dir and ports. */
export class EtcdServer {
  private proc: ChildProcess | null = null;
  private output = '';

  private constructor(
    readonly dataDir: string,
    readonly clientPort: number,
    readonly peerPort: number,
    private readonly extraArgs: string[],
  ) {}

  get endpoint(): string {
    return `http://127.0.0.1:${this.clientPort}`;
  }

  get log(): string {
    return this.output;
  }

  /** The running member's process, or null while it is stopped. */
  get process(): ChildProcess | null {
    return this.proc;
  }

  /** Starts a member; `extraArgs` are added to its command line. */
  static async start(extraArgs: string[] = []): Promise<EtcdServer> {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-etcd-'));
    const server = new EtcdServer(dir, await freePort(), await freePort(), extraArgs);
    await server.launch();
    return server;
  }

  private async launch(): Promise<void> {
    const client = this.endpoint;
    const peer = `http://127.0.0.1:${this.peerPort}`;
    const proc = spawn(
      'etcd',
      [
        '--name',
        'test',
        '--data-dir',
        join(this.dataDir, 'data'),
        '--listen-client-urls',
        client,
        '--advertise-client-urls',
        client,
        '--listen-peer-urls',
        peer,
        '--initial-advertise-peer-urls',
        peer,
        '--initial-cluster',
        `test=${peer}`,
        '--heartbeat-interval',
        '50',
        '--election-timeout',
        '500',
        '--log-level',
        'warn',
        ...this.extraArgs,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const keep = (d: Buffer) => {
      this.output = (this.output + d.toString()).slice(-OUTPUT_KEPT_BYTES);
    };
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    this.proc = proc;
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (proc.exitCode !== null)
        throw new Error(`etcd exited (${proc.exitCode}):\n${this.output}`);
      try {
        const res = await fetch(`${client}/health`);
        if (res.ok) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    proc.kill('SIGKILL');
    throw new Error(`etcd did not become healthy:\n${this.output}`);
  }

  /** Kills the member (SIGKILL) and waits for it to exit. */
  async kill(): Promise<void> {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGKILL');
    await exited;
    this.proc = null;
  }

  /** Starts the member again on the same data dir and ports. */
  async restart(): Promise<void> {
    await this.kill();
    await this.launch();
  }

  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}
