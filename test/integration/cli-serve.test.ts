/**
 * `sluice serve` as operators run it: flags, `--set`, a server.properties file, the listening
 * line, clean shutdown on SIGTERM, and clear errors for bad configuration.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ensureKcat, kcat } from '../support/kcat.js';

const cli = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts');
const dirs: string[] = [];

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'sluice-cli-'));
  dirs.push(d);
  return d;
}

afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function serve(args: string[]): {
  child: ChildProcess;
  listening: Promise<string>;
  exit: Promise<{ code: number | null; stderr: string }>;
} {
  const child = spawn(process.execPath, ['--import', 'tsx', cli, 'serve', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const listening = new Promise<string>((resolve) => {
    child.stdout?.on('data', (d: Buffer) => {
      stdout += d.toString();
      const m = /^sluice listening on (\S+)$/m.exec(stdout);
      if (m?.[1]) resolve(m[1]);
    });
  });
  const exit = new Promise<{ code: number | null; stderr: string }>((resolve) =>
    child.on('exit', (code) => resolve({ code, stderr })),
  );
  return { child, listening, exit };
}

describe('sluice serve', () => {
  it('applies flags, --set and a config file, prints one listening line, and stops cleanly on SIGTERM', async () => {
    if (!ensureKcat()) throw new Error('kcat is not installed and could not be installed');
    const dir = tempDir();
    const props = join(dir, 'server.properties');
    writeFileSync(props, '# test\nnum.partitions=2\nlog.segment.bytes = 1048576\n');
    const dataDir = join(dir, 'data');
    const s = serve([
      '--port',
      '0',
      '--data-dir',
      dataDir,
      '--config',
      props,
      '--set',
      'num.partitions=3',
      '--flush',
      'always',
    ]);
    const bootstrap = await s.listening;
    expect(bootstrap).toMatch(/^127\.0\.0\.1:\d+$/);
    const p = await kcat(['-b', bootstrap, '-P', '-t', 'cli-topic', '-X', 'acks=all'], 'a\nb\n');
    expect(p.code, p.stderr).toBe(0);
    const meta = await kcat(['-b', bootstrap, '-L', '-t', 'cli-topic', '-J']);
    // --set wins over the config file: 3 partitions, not 2.
    expect(JSON.parse(meta.stdout).topics[0].partitions).toHaveLength(3);
    s.child.kill('SIGTERM');
    const { code } = await s.exit;
    expect(code).toBe(0);
    const partitionDir = join(
      dataDir,
      readdirSync(dataDir).find((d) => d.startsWith('cli-topic-')) ?? 'missing',
    );
    expect(existsSync(partitionDir)).toBe(true);
    expect(readdirSync(partitionDir).some((f) => f.includes('clean'))).toBe(true);
  });

  it('refuses an unknown config key with a one-line error and a non-zero exit', async () => {
    const s = serve([
      '--port',
      '0',
      '--data-dir',
      join(tempDir(), 'data'),
      '--set',
      'no.such.key=1',
    ]);
    const { code, stderr } = await s.exit;
    expect(code).not.toBe(0);
    expect(stderr).toMatch(/unknown broker config "no\.such\.key"/);
  });

  it('refuses a bad value with the key named', async () => {
    const s = serve(['--port', '0', '--data-dir', join(tempDir(), 'data'), '--flush', 'sometimes']);
    const { code, stderr } = await s.exit;
    expect(code).not.toBe(0);
    expect(stderr).toMatch(/log\.flush\.policy/);
  });
});
