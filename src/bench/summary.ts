/**
 * The human summary `sluice bench` prints at the end of a run, and the `--hgrm` file names.
 * Stateless; thread-safe.
 */

import type { BenchResult, LatencySummary, Throughput } from './result.js';

const int = (n: number): string => Math.round(n).toLocaleString('en-US');
const ms = (n: number): string => (n < 10 ? n.toFixed(3) : n < 100 ? n.toFixed(2) : n.toFixed(1));

const SERIES_TITLES: Record<string, string> = {
  produceAck: 'produce ack latency',
  produceAckFromSend: 'produce ack latency from the actual send',
  publishDelay: "publish delay, the generator's own lateness",
  endToEnd: 'end-to-end latency',
  endToEndFromSend: 'end-to-end latency from the actual send',
};

function throughputLine(label: string, t: Throughput): string {
  return `${label.padEnd(22)}${int(t.recordsPerS).padStart(12)} records/s ${t.mbPerS.toFixed(2).padStart(10)} MB/s  (${int(t.records)} records in ${(t.durationMs / 1000).toFixed(2)} s)`;
}

function latencyLines(series: string, s: LatencySummary): string[] {
  const title = `${SERIES_TITLES[series] ?? series} (ms, ${int(s.count)} samples)`;
  const cells: [string, number][] = [
    ['p50', s.p50],
    ['p90', s.p90],
    ['p99', s.p99],
    ['p99.9', s.p999],
    ['p99.99', s.p9999],
    ['max', s.max],
  ];
  return [title, `  ${cells.map(([k, v]) => `${k} ${ms(v)}`).join('   ')}`];
}

/** ` (key=value, ...)` for the embedded broker's `--broker-config` settings, or ''. */
function brokerConfigs(s: BenchResult['settings']): string {
  const set = Object.entries(s)
    .filter(([k]) => k.startsWith('broker.'))
    .map(([k, v]) => `${k.slice('broker.'.length)}=${v}`);
  return set.length > 0 ? ` (${set.join(', ')})` : '';
}

/** The end-of-run summary (several lines, ending with a newline). */
export function formatSummary(r: BenchResult): string {
  const s = r.settings;
  const lines = [
    `sluice bench ${r.kind}: ${s.bootstrap === 'embedded' ? `embedded broker${brokerConfigs(s)}` : `broker ${s.bootstrap}`}, client ${r.versions.client}, topic ${s.topic} (${s.partitions} partitions), ${s.recordSizeBytes} B records, acks ${s.acks}${s.rateRecordsPerS ? `, rate ${int(Number(s.rateRecordsPerS))}/s` : ''}${s.workload ? `, workload ${s.workload}` : ''}`,
  ];
  const produced = r.metrics['produce.records_per_s'];
  if (produced && r.kind === 'e2e') {
    const mb = r.metrics['produce.mb_per_s']?.value ?? 0;
    lines.push(
      `${'produce throughput'.padEnd(22)}${int(produced.value).padStart(12)} records/s ${mb.toFixed(2).padStart(10)} MB/s`,
    );
  }
  lines.push(
    throughputLine(r.kind === 'produce' ? 'throughput' : 'consume throughput', r.throughput),
  );
  for (const [series, summary] of Object.entries(r.latency)) {
    lines.push(...latencyLines(series, summary));
  }
  if (r.errors) lines.push(`errors: ${int(r.errors)} records failed; first: ${r.firstError}`);
  if (r.stoppedBy)
    lines.push(`stopped early by ${r.stoppedBy}: the figures cover the part that was measured`);
  return `${lines.join('\n')}\n`;
}

/**
 * Where each series' `--hgrm` text goes: the run's main series (end-to-end for e2e, produce
 * acknowledgement otherwise) to FILE itself, any other to FILE with `.<series>` before the
 * extension (`lat.hgrm` -> `lat.produceAck.hgrm`).
 */
export function hgrmPaths(
  file: string,
  series: readonly string[],
  main: string,
): Map<string, string> {
  const out = new Map<string, string>();
  const dot = file.lastIndexOf('.');
  const slash = file.lastIndexOf('/');
  const [stem, ext] = dot > slash + 1 ? [file.slice(0, dot), file.slice(dot)] : [file, ''];
  for (const name of series) out.set(name, name === main ? file : `${stem}.${name}${ext}`);
  return out;
}
