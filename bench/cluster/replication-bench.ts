/**
 * Replication throughput: 3 brokers on this machine, replication factor 3, min.insync.replicas 2,
 * acks=all, 100-byte records in 64 KiB batches, against one broker with acks=1 in the same run
 * (the issue's target: at least 40% of it; Kafka's 2014 benchmark measured 51%).
 *
 * Every broker is its own process (`replica-node.ts`: own network thread, owner workers, data dir
 * and port); the three form a cluster over an in-memory `StaticClusterStore` copy in each process
 * (no etcd; the partition states are fixed: partition p led by node (p mod 3) + 1, ISR all three).
 * Followers replicate with real replica fetches over loopback. The load comes from another
 * process (`produce-load.ts`, 32 requests in flight in total, round-robin over the partitions,
 * each sent to its leader). Both runs use the same topic shape (`--partitions`, default 3) and
 * flush policy `never` (Kafka's default), so the comparison isolates replication. A run whose
 * ISR shrank fails.
 *
 * Each run starts with `--warmup` seconds (default 15) of the same load, not measured: records/s
 * and broker CPU count from its end. Without it a 4 s run measured start-up transients that a
 * running broker pays once, and more of them with 3 brokers than with one: JIT compilation of
 * the replication paths in every thread (3 processes, each with its own isolates), and the first
 * touch (page faults) of the 32 MiB owner rings, which a follower's appends take about a second
 * to wrap at these rates. On 2 shared cores the 3 brokers' optimizing compilers are still busy
 * well after 5 s of load (`--node-options --trace-opt`: hundreds of functions still optimized
 * in a window that follows a 5 s warm-up, a few dozen after 15 s), while one broker is warm
 * after 5 s.
 *
 * Between the warm-up and the window the load pauses (its requests answered) while `sync`
 * writes back what the warm-up left dirty in the page cache, so that every window starts from
 * the same kernel state however long the warm-up was (see `settle`).
 *
 * What the default run measures: the page-cache regime. At these rates a run writes several
 * GB; once the kernel's dirty pages reach its limits (about 2 GB on a 24 GiB machine) every
 * writer is held to the disk's writeback rate. The 3 brokers write each record three times to
 * the same disk, so once both runs are held to it (`--seconds 30` on a machine whose disk
 * writes back a few hundred MB/s) they write the same bytes per second and the ratio tends to
 * a third, whatever the CPU costs. Brokers on separate machines each have their own disk.
 *
 * Fresh page-cache pages on a VM: a host that backs guest memory lazily (and takes back what
 * the guest frees) makes the first write into a page far slower than a write into a page the
 * guest used recently: dd into a new file ran at 0.73 GB/s on this kind of machine, then 4.6-6.1
 * GB/s over the same file, and 4.7 GB/s into a new file right after deleting it. The default
 * page cache of logs that only grow makes both sides pay that in varying amounts (the single
 * broker's CPU per record ranged 0.15-0.57 µs across rounds of one day). So every partition's log
 * is capped (64 MiB segments, 256 MiB retention, checked every 500 ms): each broker keeps about
 * 1 GB and writes into pages it freed moments before, as a long-running broker with retention
 * does. That is the steady state, with far steadier figures (see BOUNDED_LOG_CONFIGS).
 * `--growing-log` drops the caps (figures then move with the host's memory state);
 * `--bounded-log` is accepted and changes nothing (it was the option before the caps became the
 * default).
 *
 * The brokers run the compiled build (`dist/`; the npm script builds first), like `sluice serve`;
 * `--src` runs them from the TypeScript sources through tsx instead.
 *
 *   node --import tsx bench/cluster/replication-bench.ts [--seconds 4] [--warmup 15]
 *     [--partitions 3] [--in-flight 32] [--rounds 3] [--json FILE] [--src]
 *     [--node-options "--cpu-prof --cpu-prof-dir=D"] [--only single|cluster]
 *     [--replication-factor 3] [--broker-config key=value ...] [--growing-log]
 *
 * `--replication-factor` (1-3, default 3, the issue's figure) sets how many of the 3 brokers hold
 * each partition; min.insync.replicas is min(2, RF). RF 1 is three brokers without replication,
 * so the three runs side by side separate the cost of each follower copy from that of running
 * three processes.
 *
 * `--only` runs one side (no ratio), for profiling it; the measured window's start is printed
 * to stderr ("measuring N broker(s)") so that a system profiler can be attached then.
 */

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SLUICE_NODE_FLAGS } from '../../src/cli/node-flags.js';
import { killOnInterrupt, tempDir } from '../io/common.js';

const here = (f: string): string => new URL(f, import.meta.url).pathname;

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 ? (process.argv[i + 1] ?? dflt) : dflt;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/**
 * Unless `--growing-log`: logs that stay near 1 GB per broker (3 partitions), so that appends
 * write into recycled page-cache pages (see the module comment). Before any `--broker-config`.
 */
const BOUNDED_LOG_CONFIGS = [
  `log.segment.bytes=${64 * 1024 * 1024}`,
  `log.retention.bytes=${256 * 1024 * 1024}`,
  'log.retention.check.interval.ms=500',
];
const boundedLog = !process.argv.includes('--growing-log');

/** `--broker-config key=value` (repeatable): broker configs for every broker of both runs. */
const brokerConfigs = [
  ...(boundedLog ? BOUNDED_LOG_CONFIGS : []),
  ...process.argv.flatMap((a, i) =>
    a === '--broker-config' && process.argv[i + 1] !== undefined
      ? [process.argv[i + 1] as string]
      : [],
  ),
];

/**
 * Node options of the broker processes: the `sluice` command's own (as `sluice serve` runs), then
 * any extra ones given (e.g. "--cpu-prof --cpu-prof-dir=DIR"), for the broker processes only.
 */
const brokerNodeOptions = [
  ...SLUICE_NODE_FLAGS,
  ...arg('--node-options', '')
    .split(' ')
    .filter((o) => o !== ''),
];

function run(
  script: string,
  args: string[],
  onLine?: (line: string) => void,
  nodeOptions: string[] = [],
  stdin: 'ignore' | 'pipe' = 'ignore',
): { child: ChildProcess; done: Promise<string> } {
  const child = killOnInterrupt(
    spawn(process.execPath, [...nodeOptions, '--import', 'tsx', here(script), ...args], {
      stdio: [stdin, 'pipe', 'inherit'],
    }),
  );
  let out = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
    for (const line of d.toString().split('\n')) if (line !== '') onLine?.(line);
  });
  const done = new Promise<string>((resolve, reject) =>
    child.once('exit', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`${script} exited with ${code}`)),
    ),
  );
  return { child, done };
}

interface Settings {
  seconds: number;
  warmupS: number;
  partitions: number;
  inFlight: number;
  /** Replicas of each partition in the 3-broker run (1-3). */
  replicationFactor: number;
}

let runs = 0;

async function startNodes(
  root: string,
  count: number,
  partitions: number,
  replicationFactor: number,
): Promise<{ ports: number[]; startMeasuring: () => void; stop: () => Promise<number> }> {
  runs++;
  const ports: number[] = [];
  for (let i = 0; i < count; i++) ports.push(await freePort());
  const nodeFlags = count === 1 ? ['--single'] : [];
  for (const kv of brokerConfigs) nodeFlags.push('--config', kv);
  if (process.argv.includes('--src')) nodeFlags.push('--src');
  const dirs = ports.map((_, i) => join(root, `run-${runs}-node-${i + 1}`));
  const nodes = ports.map((_, i) => {
    let ready: () => void = () => undefined;
    const isReady = new Promise<void>((r) => {
      ready = r;
    });
    const dir = dirs[i] as string;
    const args = [
      String(i + 1),
      dir,
      ports.join(','),
      String(partitions),
      String(replicationFactor),
      ...nodeFlags,
    ];
    const n = run(
      './replica-node.ts',
      args,
      (l) => {
        if (l === 'ready') ready();
      },
      brokerNodeOptions,
    );
    return { ...n, isReady };
  });
  await Promise.race([Promise.all(nodes.map((n) => n.isReady)), ...nodes.map((n) => n.done)]);
  return {
    ports,
    startMeasuring: () => {
      for (const n of nodes) n.child.kill('SIGUSR2');
    },
    /** Stops the brokers; resolves with their CPU time in µs (all threads, since measuring). */
    stop: async () => {
      for (const n of nodes) n.child.kill('SIGTERM');
      const outs = await Promise.all(nodes.map((n) => n.done));
      let cpuUs = 0;
      // Each run writes gigabytes; leaving them would make later rounds pay for the writeback
      // (and a fuller disk) of earlier ones. Deleting discards the pages not yet written.
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
      for (const out of outs) for (const m of out.matchAll(/^cpu (\d+)$/gm)) cpuUs += Number(m[1]);
      for (const out of outs)
        for (const m of out.matchAll(/^fetch (\d+) (\d+) (\d+)$/gm))
          process.stdout.write(
            `  follower: ${m[1]} fetch rounds, ${(Number(m[2]) / Math.max(1, Number(m[1])) / 1024).toFixed(0)} KiB per round, ${((100 * Number(m[3])) / Math.max(1, Number(m[2]))).toFixed(0)}% appended from the receive arena\n`,
          );
      return cpuUs;
    },
  };
}

interface Measured {
  recordsPerS: number;
  /** Broker CPU (every process and thread) per record, in µs. */
  cpuUsPerRecord: number;
  /** Share of the machine's CPU time left idle during the load (Linux); null elsewhere. */
  machineIdlePct: number | null;
  /**
   * CPU of the load process during the window, in % of one core: a side that leaves the
   * machine idle while its load is far from a core is bound by its requests in flight.
   */
  loadCpuPct: number;
}

/** The machine's idle and total CPU time so far, in clock ticks; null off Linux. */
type CpuTicks = { idle: number; total: number } | null;

/** `CpuTicks` now, from /proc/stat. */
function machineTicks(): CpuTicks {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]?.trim().split(/\s+/).slice(1);
    const ticks = (fields ?? []).map(Number);
    // user nice system idle iowait ...: idle and iowait are time no thread ran.
    return { idle: (ticks[3] ?? 0) + (ticks[4] ?? 0), total: ticks.reduce((a, b) => a + b, 0) };
  } catch {
    return null;
  }
}

function idlePct(from: CpuTicks, to: CpuTicks): number | null {
  if (from === null || to === null || to.total <= from.total) return null;
  return (100 * (to.idle - from.idle)) / (to.total - from.total);
}

async function measure(root: string, brokers: number, s: Settings): Promise<Measured> {
  const nodes = await startNodes(root, brokers, s.partitions, s.replicationFactor);
  let recordsPerS = 0;
  let loadCpuPct = 0;
  let ticksFrom: CpuTicks = null;
  let ticksTo: CpuTicks = null;
  try {
    const acks = brokers === 1 ? '1' : '-1';
    // Partition p goes to its leader: node (p mod brokers) + 1.
    const targets = Array.from(
      { length: s.partitions },
      (_, p) => `127.0.0.1:${nodes.ports[p % brokers]}:${p}`,
    );
    const args = ['p', String(s.seconds), acks, String(s.inFlight), ...targets];
    args.push('--warmup', String(s.warmupS));
    const onLine = (line: string): void => {
      if (line === 'warm') {
        // The warm-up is over and the load paused: write back what it left dirty, then go on.
        settle();
        load.child.stdin?.write('go\n');
      } else if (line === 'measuring') {
        // The measured window starts: each broker counts its CPU from here.
        nodes.startMeasuring();
        ticksFrom = machineTicks();
        process.stderr.write(`measuring ${brokers} broker(s)\n`);
      }
    };
    // onLine runs only once the load prints, after `load` is assigned.
    const load = run('./produce-load.ts', args, onLine, [], 'pipe');
    const out = await load.done;
    ticksTo = machineTicks();
    const [rate, cpu] = (out.trim().split('\n').at(-1) ?? '').split(' ').map(Number);
    if (rate === undefined || cpu === undefined || !Number.isFinite(rate + cpu))
      throw new Error(`unexpected load output ${JSON.stringify(out)}`);
    recordsPerS = rate;
    loadCpuPct = cpu;
  } catch (err) {
    await nodes.stop();
    throw err;
  }
  const cpuUs = await nodes.stop();
  // The CPU covers the load (s.seconds) plus a short stop: a slight overestimate.
  return {
    recordsPerS,
    cpuUsPerRecord: cpuUs / Math.max(1, recordsPerS * s.seconds),
    machineIdlePct: idlePct(ticksFrom, ticksTo),
    loadCpuPct,
  };
}

/**
 * Between the warm-up and the measured window: `sync` writes back the page cache the warm-up
 * dirtied. Without it, each window would start wherever the warm-up left the kernel's dirty
 * pages, and a longer warm-up (or a faster side) would measure more of the kernel's writeback
 * throttling: the kernel starts writeback at 10% of memory dirty, and a 5 s warm-up of the single
 * broker alone dirties about that much.
 */
function settle(): void {
  const startedMs = performance.now();
  const r = spawnSync('sync', { stdio: 'ignore' });
  if (r.status !== 0) process.stderr.write('sync failed; measuring without it\n');
  process.stderr.write(
    `  sync after the warm-up: ${(performance.now() - startedMs).toFixed(0)} ms\n`,
  );
}

const minInsync = (s: Settings): number => Math.min(2, s.replicationFactor);

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

const k = (n: number): string => `${(n / 1e3).toFixed(0)} k`;
const pct = (fraction: number): string => `${(fraction * 100).toFixed(0)}%`;

const describe = (m: Measured): string => {
  const idle = m.machineIdlePct === null ? '' : `, machine ${m.machineIdlePct.toFixed(0)}% idle`;
  return `${k(m.recordsPerS)}/s (${m.cpuUsPerRecord.toFixed(2)} µs CPU/record${idle}, load ${m.loadCpuPct.toFixed(0)}% of a core)`;
};

/**
 * The machine's idle CPU during the loads (medians): a run that leaves much of it idle is bound
 * by waiting (replication round trips, the load's requests in flight), not by CPU alone.
 */
function idleSummary(ones: Measured[], threes: Measured[]): string {
  const idle = (ms: Measured[]): number[] =>
    ms.flatMap((m) => (m.machineIdlePct === null ? [] : [m.machineIdlePct]));
  const a = idle(ones);
  const b = idle(threes);
  if (a.length === 0 || b.length === 0) return '';
  return `machine CPU idle during the load: ${median(a).toFixed(0)}% single, ${median(b).toFixed(0)}% 3 brokers\n`;
}

/** `--only`: one side's rounds, for profiling it; no ratio. */
async function measureOnly(brokers: 1 | 3, s: Settings, rounds: number): Promise<void> {
  const root = tempDir(tmpdir(), 'sluice-repl-bench-');
  try {
    for (let r = 0; r < rounds; r++)
      process.stdout.write(
        `round ${r + 1}: ${brokers} broker(s) ${describe(await measure(root, brokers, s))}\n`,
      );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const s: Settings = {
    seconds: Number(arg('--seconds', '4')),
    warmupS: Number(arg('--warmup', '15')),
    partitions: Number(arg('--partitions', '3')),
    inFlight: Number(arg('--in-flight', '32')),
    replicationFactor: Number(arg('--replication-factor', '3')),
  };
  if (![1, 2, 3].includes(s.replicationFactor))
    throw new Error('--replication-factor takes 1, 2 or 3');
  const rounds = Number(arg('--rounds', '3'));
  const json = arg('--json', '');
  const only = arg('--only', '');
  if (only !== '') {
    if (only !== 'single' && only !== 'cluster') throw new Error('--only takes single or cluster');
    return measureOnly(only === 'single' ? 1 : 3, s, rounds);
  }
  const root = tempDir(tmpdir(), 'sluice-repl-bench-');
  const ones: Measured[] = [];
  const threes: Measured[] = [];
  // Each round's two runs follow each other, so its own ratio sees one machine state; the
  // medians of the two sides may come from different rounds (and states), so both are shown.
  const roundRatios: number[] = [];
  try {
    // Alternating rounds: a machine shared with other work drifts; medians of interleaved runs
    // compare like with like.
    for (let r = 0; r < rounds; r++) {
      ones.push(await measure(root, 1, s));
      threes.push(await measure(root, 3, s));
      const a = ones[r] as Measured;
      const b = threes[r] as Measured;
      roundRatios.push(b.recordsPerS / a.recordsPerS);
      process.stdout.write(
        `round ${r + 1}: single acks=1 ${describe(a)}, 3 brokers acks=all ${describe(b)}, ` +
          `ratio ${pct(roundRatios[r] as number)}\n`,
      );
    }
    const one = median(ones.map((m) => m.recordsPerS));
    const three = median(threes.map((m) => m.recordsPerS));
    const cpuOne = median(ones.map((m) => m.cpuUsPerRecord));
    const cpuThree = median(threes.map((m) => m.cpuUsPerRecord));
    const ratio = three / one;
    process.stdout.write(
      `${s.partitions} partition(s), ${s.inFlight} requests in flight, medians of ${rounds} rounds` +
        `${boundedLog ? ', bounded logs (recycled page cache)' : ', growing logs (fresh page cache)'}\n` +
        `single broker acks=1: ${k(one)} records/s\n` +
        `3 brokers RF ${s.replicationFactor} acks=all (min.insync ${minInsync(s)}): ${k(three)} records/s\n` +
        `ratio: ${pct(ratio)} of the medians${s.replicationFactor === 3 ? ' (target >= 40%)' : ''}; ` +
        `per round ${roundRatios.map(pct).join(', ')} (median ${pct(median(roundRatios))})\n` +
        `broker CPU per record: ${cpuOne.toFixed(2)} µs single, ${cpuThree.toFixed(2)} µs for the 3 brokers together\n` +
        idleSummary(ones, threes),
    );
    if (json !== '')
      writeFileSync(
        json,
        JSON.stringify(
          {
            settings: s,
            brokerConfigs,
            singleAcks1: one,
            replicatedAcksAll: three,
            ratio,
            roundRatios,
            cpuOne,
            cpuThree,
            ones,
            threes,
          },
          null,
          2,
        ),
      );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
