/**
 * BrokerChild: runs `sluice serve` as a child process (through tsx, from the sources) so tests
 * can kill it for real (SIGKILL) and restart it on the same data dir. Test-only; owned by the
 * test's thread.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** How long the child may take to print its listening line. */
const START_TIMEOUT_MS = 30_000;
/** Output kept for diagnostics (bytes). */
const OUTPUT_KEPT_BYTES = 64 * 1024;

export interface BrokerChildOptions {
  dataDir: string;
  /** Extra `sluice serve` arguments, e.g. ['--flush', 'always']. */
  args?: string[];
  /** Open-file limit (soft and hard) of the child, set by the shell's `ulimit -n` before exec. */
  openFileLimit?: number;
  /** Node options before the script, e.g. ['--trace-gc-nvp']. */
  nodeFlags?: readonly string[];
  /** Output kept for `log` (bytes; default 64 KiB). */
  outputKeptBytes?: number;
}

export class BrokerChild {
  private output = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  private constructor(
    readonly proc: ChildProcess,
    readonly host: string,
    readonly port: number,
  ) {
    this.exited = new Promise((resolve) => {
      if (proc.exitCode !== null || proc.signalCode !== null)
        resolve({ code: proc.exitCode, signal: proc.signalCode });
      else proc.once('exit', (code, signal) => resolve({ code, signal }));
    });
  }

  get bootstrap(): string {
    return `${this.host}:${this.port}`;
  }

  /** stdout and stderr so far (tail), for failure messages. */
  get log(): string {
    return this.output;
  }

  /** Starts `sluice serve --port 0 --data-dir DIR ...args` and waits for its listening line. */
  static start(opts: BrokerChildOptions): Promise<BrokerChild> {
    const kept = opts.outputKeptBytes ?? OUTPUT_KEPT_BYTES;
    const node = [
      process.execPath,
      ...(opts.nodeFlags ?? []),
      '--import',
      'tsx',
      'src/cli/main.ts',
      'serve',
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--data-dir',
      opts.dataDir,
      ...(opts.args ?? []),
    ];
    const limit = opts.openFileLimit;
    // `ulimit -n N` without -S/-H sets both limits, so Node cannot raise its soft limit past N.
    const [file, ...args] =
      limit === undefined ? node : ['sh', '-c', `ulimit -n ${limit} && exec "$@"`, 'sh', ...node];
    const proc = spawn(file as string, args, {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const keep = (d: Buffer) => {
      output = (output + d.toString()).slice(-kept);
    };
    proc.stderr?.on('data', keep);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        proc.kill('SIGKILL');
        reject(new Error(`sluice serve did not start:\n${output}`));
      }, START_TIMEOUT_MS);
      const onExit = (code: number | null) => {
        clearTimeout(timer);
        reject(new Error(`sluice serve exited (${code}) before listening:\n${output}`));
      };
      proc.once('exit', onExit);
      proc.stdout?.on('data', (d: Buffer) => {
        keep(d);
        const m = /sluice listening on (\S+):(\d+)/.exec(output);
        if (!m) return;
        clearTimeout(timer);
        proc.off('exit', onExit);
        proc.stdout?.removeAllListeners('data');
        proc.stderr?.off('data', keep);
        const child = new BrokerChild(proc, m[1] as string, Number(m[2]));
        child.output = output;
        const append = (x: Buffer) => {
          child.output = (child.output + x.toString()).slice(-kept);
        };
        proc.stdout?.on('data', append);
        proc.stderr?.on('data', append);
        resolve(child);
      });
    });
  }

  /** SIGKILL: no shutdown code runs, nothing is flushed beyond what already was. */
  async kill9(): Promise<void> {
    this.proc.kill('SIGKILL');
    await this.exited;
  }

  /** SIGTERM: a clean stop; resolves with the exit code. */
  async stop(): Promise<number | null> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return this.proc.exitCode;
    this.proc.kill('SIGTERM');
    return (await this.exited).code;
  }
}
