/**
 * The self-contained HTML report of one or several `sluice-bench/1` results (`--html FILE`).
 *
 * One file, no script, no external resource: inline CSS and inline SVG drawn here, and a
 * Content-Security-Policy of `default-src 'none'` so that a browser fetches nothing at all.
 * Sections: a summary (run, throughput, latency percentiles, metrics, settings, versions,
 * machine; one column per result), the latency percentile plot on a logarithmic "1/(1-p)" x axis
 * (50% .. 99.999%, one line per latency series and result, as HdrHistogram plots do), and the
 * throughput and p99 over time from `timeline`. Several results (A vs B) are overlaid, each
 * result with its own line style. Every piece of text from a result is HTML-escaped.
 *
 * Pure functions; no state.
 */

import { formatValue } from './compare.js';
import type { BenchResult, LatencySummary } from './result.js';

export interface HtmlReportOptions {
  /** Page title (default "Sluice benchmark: <kind>"). */
  title?: string;
  /** One label per result (default "run 1", "run 2", ...; a single result is unlabelled). */
  labels?: readonly string[];
}

/** Results drawn in one report; more is unreadable and bounds the page size. */
export const REPORT_RESULTS_MAX = 8;
/** Points kept per line (a longer timeline is thinned evenly). */
const POINTS_PER_LINE_MAX = 2000;

const PALETTE = [
  '#1f77b4',
  '#d62728',
  '#2ca02c',
  '#ff7f0e',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#17becf',
];
const DASHES = ['', '6 4', '2 3', '10 3 2 3'];

/** Escapes text for HTML element content and double- or single-quoted attribute values. */
export function escapeHtml(text: string): string {
  return text
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

/** x coordinate of percentile p (0 <= p < 100) on the "1/(1-p)" axis: log10(1 / (1 - p/100)). */
export function percentileX(percentile: number): number {
  return Math.log10(100 / (100 - percentile));
}

/** The labelled ticks of the percentile axis: 0% .. 99.999% (99.9999% when the data reach it). */
export const PERCENTILE_TICKS: readonly { percentile: number; label: string }[] = [
  { percentile: 0, label: '0%' },
  { percentile: 50, label: '50%' },
  { percentile: 90, label: '90%' },
  { percentile: 99, label: '99%' },
  { percentile: 99.9, label: '99.9%' },
  { percentile: 99.99, label: '99.99%' },
  { percentile: 99.999, label: '99.999%' },
  { percentile: 99.9999, label: '99.9999%' },
];

/** A round step (1, 2 or 5 times a power of ten) giving about `count` ticks up to `max`. */
export function niceStep(max: number, count: number): number {
  if (!(max > 0)) return 1;
  const raw = max / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const m = raw / power;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * power;
}

type Point = readonly [number, number];

interface Line {
  label: string;
  color: string;
  dash: string;
  /** null marks a gap. */
  points: readonly (Point | null)[];
}

interface Tick {
  value: number;
  label: string;
}

interface ChartSpec {
  id: string;
  title: string;
  xLabel: string;
  yLabel: string;
  lines: readonly Line[];
  xMax: number;
  /** Fixed x ticks; default: round numbers from 0 to xMax. */
  xTicks?: readonly Tick[];
}

const W = 860;
const H = 380;
const M = { left: 78, right: 40, top: 16, bottom: 52 };

function round1(v: number): string {
  return (Math.round(v * 10) / 10).toString();
}

function thin(points: readonly (Point | null)[]): readonly (Point | null)[] {
  if (points.length <= POINTS_PER_LINE_MAX) return points;
  const every = Math.ceil(points.length / POINTS_PER_LINE_MAX);
  return points.filter((_, i) => i % every === 0 || i === points.length - 1);
}

function pathData(
  points: readonly (Point | null)[],
  sx: (x: number) => number,
  sy: (y: number) => number,
): string {
  const parts: string[] = [];
  let pen = false;
  for (const p of thin(points)) {
    if (p === null) {
      pen = false;
      continue;
    }
    parts.push(`${pen ? 'L' : 'M'}${round1(sx(p[0]))} ${round1(sy(p[1]))}`);
    pen = true;
  }
  return parts.join(' ');
}

function defaultTicks(max: number): Tick[] {
  const step = niceStep(max, 6);
  const ticks: Tick[] = [];
  for (let v = 0; v <= max * 1.0001 && ticks.length < 50; v += step)
    ticks.push({ value: v, label: formatValue(Number(v.toPrecision(6))) });
  return ticks;
}

function axisSvg(
  spec: ChartSpec,
  sx: (x: number) => number,
  sy: (y: number) => number,
  yMax: number,
): string {
  const out: string[] = [];
  const x0 = M.left;
  const x1 = W - M.right;
  const y0 = H - M.bottom;
  for (const t of defaultTicks(yMax)) {
    const y = round1(sy(t.value));
    out.push(`<line class="grid" x1="${x0}" x2="${x1}" y1="${y}" y2="${y}"/>`);
    out.push(
      `<text class="tick" x="${x0 - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${escapeHtml(t.label)}</text>`,
    );
  }
  for (const t of spec.xTicks ?? defaultTicks(spec.xMax)) {
    const x = round1(sx(t.value));
    out.push(`<line class="grid" x1="${x}" x2="${x}" y1="${M.top}" y2="${y0}"/>`);
    out.push(
      `<text class="tick" x="${x}" y="${y0 + 18}" text-anchor="middle">${escapeHtml(t.label)}</text>`,
    );
  }
  out.push(`<line class="axis" x1="${x0}" x2="${x1}" y1="${y0}" y2="${y0}"/>`);
  out.push(`<line class="axis" x1="${x0}" x2="${x0}" y1="${M.top}" y2="${y0}"/>`);
  out.push(
    `<text class="label" x="${(x0 + x1) / 2}" y="${H - 10}" text-anchor="middle">${escapeHtml(spec.xLabel)}</text>`,
  );
  out.push(
    `<text class="label" transform="translate(16 ${(M.top + y0) / 2}) rotate(-90)" text-anchor="middle">${escapeHtml(spec.yLabel)}</text>`,
  );
  return out.join('');
}

function legendHtml(lines: readonly Line[]): string {
  const items = lines.map(
    (l) =>
      `<li><svg width="28" height="10" aria-hidden="true"><line x1="0" x2="28" y1="5" y2="5" stroke="${l.color}" stroke-width="2.5" stroke-dasharray="${l.dash}"/></svg>${escapeHtml(l.label)}</li>`,
  );
  return `<ul class="legend">${items.join('')}</ul>`;
}

/** An SVG line chart with a linear y axis from 0; x from 0 to `xMax`. */
function lineChart(spec: ChartSpec): string {
  const drawn = spec.lines.filter((l) => l.points.some((p) => p !== null));
  if (drawn.length === 0) return '';
  let yMaxData = 0;
  for (const l of drawn)
    for (const p of l.points) if (p !== null) yMaxData = Math.max(yMaxData, p[1]);
  const yStep = niceStep(yMaxData > 0 ? yMaxData : 1, 6);
  const yMax = Math.max(yStep, Math.ceil((yMaxData * 1.04) / yStep) * yStep);
  const xMax = spec.xMax > 0 ? spec.xMax : 1;
  const sx = (x: number): number => M.left + (x / xMax) * (W - M.left - M.right);
  const sy = (y: number): number => H - M.bottom - (y / yMax) * (H - M.top - M.bottom);
  const paths = drawn.map(
    (l) =>
      `<path class="series" data-label="${escapeHtml(l.label)}" d="${pathData(l.points, sx, sy)}" stroke="${l.color}" stroke-dasharray="${l.dash}"/>`,
  );
  return `<figure id="${spec.id}"><figcaption>${escapeHtml(spec.title)}</figcaption><svg class="chart" viewBox="0 0 ${W} ${H}" role="img" aria-label="${escapeHtml(spec.title)}">${axisSvg(spec, sx, sy, yMax)}${paths.join('')}</svg>${legendHtml(drawn)}</figure>`;
}

function styleOf(resultIndex: number, lineIndex: number): { color: string; dash: string } {
  return {
    color: PALETTE[lineIndex % PALETTE.length] as string,
    dash: DASHES[resultIndex % DASHES.length] as string,
  };
}

function latencyPoints(s: LatencySummary): Point[] {
  return s.percentiles
    .filter((p) => p.percentile < 100)
    .map((p) => [percentileX(p.percentile), p.valueMs] as const);
}

function percentileChart(results: readonly BenchResult[], labels: readonly string[]): string {
  const lines: Line[] = [];
  const seriesNames = [...new Set(results.flatMap((r) => Object.keys(r.latency)))];
  results.forEach((r, ri) => {
    seriesNames.forEach((name, si) => {
      const s = r.latency[name];
      if (s === undefined) return;
      const label = labels[ri] === '' ? name : `${labels[ri]}: ${name}`;
      lines.push({ label, ...styleOf(ri, si), points: latencyPoints(s) });
    });
  });
  let xMaxData = 0;
  for (const l of lines)
    for (const p of l.points) if (p !== null) xMaxData = Math.max(xMaxData, p[0]);
  const xMax = Math.max(5, Math.ceil(xMaxData));
  const xTicks = PERCENTILE_TICKS.map((t) => ({
    value: percentileX(t.percentile),
    label: t.label,
  }));
  return lineChart({
    id: 'latency-percentiles',
    title: 'Latency by percentile',
    xLabel: 'percentile (log scale of 1/(1-p))',
    yLabel: 'latency (ms)',
    lines,
    xMax,
    xTicks: xTicks.filter((t) => t.value <= xMax),
  });
}

function timelineCharts(results: readonly BenchResult[], labels: readonly string[]): string {
  const rateLines: Line[] = [];
  const p99Lines: Line[] = [];
  let xMax = 0;
  results.forEach((r, ri) => {
    const style = styleOf(ri, ri);
    const label = labels[ri] === '' ? 'records/s' : (labels[ri] as string);
    const rate = r.timeline.map((t) => [t.elapsedMs / 1000, t.recordsPerS] as const);
    const p99 = r.timeline.map((t) =>
      t.p99Ms === null ? null : ([t.elapsedMs / 1000, t.p99Ms] as const),
    );
    for (const t of r.timeline) xMax = Math.max(xMax, t.elapsedMs / 1000);
    rateLines.push({ label, ...style, points: rate });
    p99Lines.push({
      label: labels[ri] === '' ? 'p99' : (labels[ri] as string),
      ...style,
      points: p99,
    });
  });
  return (
    lineChart({
      id: 'throughput-over-time',
      title: 'Throughput over time',
      xLabel: 'elapsed (s)',
      yLabel: 'records/s',
      lines: rateLines,
      xMax,
    }) +
    lineChart({
      id: 'p99-over-time',
      title: 'p99 latency over time (per interval)',
      xLabel: 'elapsed (s)',
      yLabel: 'p99 (ms)',
      lines: p99Lines,
      xMax,
    })
  );
}

type Cell = string | number | boolean | null | undefined;

function cellText(v: Cell): string {
  if (v === undefined) return '';
  if (v === null) return 'null';
  if (typeof v === 'number') return formatValue(v);
  return String(v);
}

function table(title: string, head: readonly string[], rows: readonly (readonly Cell[])[]): string {
  if (rows.length === 0) return '';
  const th = head.map((h) => `<th>${escapeHtml(h)}</th>`).join('');
  const body = rows
    .map(
      (r) =>
        `<tr>${r.map((c, i) => (i === 0 ? `<th>${escapeHtml(cellText(c))}</th>` : `<td>${escapeHtml(cellText(c))}</td>`)).join('')}</tr>`,
    )
    .join('');
  return `<section><h2>${escapeHtml(title)}</h2><table><thead><tr>${th}</tr></thead><tbody>${body}</tbody></table></section>`;
}

/** Rows of `key, value in result 1, value in result 2, ...` over the union of keys. */
function unionRows(
  results: readonly BenchResult[],
  pick: (r: BenchResult) => Record<string, Cell>,
): Cell[][] {
  const maps = results.map(pick);
  const keys = [...new Set(maps.flatMap((m) => Object.keys(m)))];
  return keys.map((k) => [k, ...maps.map((m) => m[k])]);
}

const LATENCY_COLUMNS = ['count', 'p50', 'p90', 'p99', 'p999', 'p9999', 'max', 'mean'] as const;

function summaryTables(results: readonly BenchResult[], labels: readonly string[]): string {
  const cols = [
    '',
    ...labels.map((l, i) => (l === '' ? `value${results.length > 1 ? ` ${i + 1}` : ''}` : l)),
  ];
  const latencyRows: Cell[][] = [];
  results.forEach((r, ri) => {
    for (const [name, s] of Object.entries(r.latency)) {
      const label = labels[ri] === '' ? name : `${labels[ri]}: ${name}`;
      latencyRows.push([label, ...LATENCY_COLUMNS.map((c) => s[c])]);
    }
  });
  return [
    table(
      'Run',
      cols,
      unionRows(results, (r) => ({ kind: r.kind, startedAt: r.startedAt })),
    ),
    table(
      'Throughput',
      cols,
      unionRows(results, (r) => ({ ...r.throughput })),
    ),
    table(
      'Latency (ms)',
      ['series', 'count', 'p50', 'p90', 'p99', 'p99.9', 'p99.99', 'max', 'mean'],
      latencyRows,
    ),
    table(
      'Metrics',
      cols,
      unionRows(results, (r) =>
        Object.fromEntries(
          Object.entries(r.metrics).map(([k, m]) => [
            `${k} (${m.unit}, ${m.better} is better)`,
            m.value,
          ]),
        ),
      ),
    ),
    table(
      'Settings',
      cols,
      unionRows(results, (r) => ({ ...r.settings })),
    ),
    table(
      'Versions',
      cols,
      unionRows(results, (r) => ({ ...r.versions })),
    ),
    table(
      'Machine',
      cols,
      unionRows(results, (r) => ({ ...r.machine })),
    ),
  ].join('');
}

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#222;margin:24px auto;max-width:960px;padding:0 16px}
h1{font-size:22px}h2{font-size:16px;margin:22px 0 6px}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}
th,td{border-bottom:1px solid #ddd;padding:3px 10px;text-align:right}
th:first-child,thead th{text-align:left}tbody th{font-weight:normal;color:#444}
figure{margin:24px 0}figcaption{font-weight:600;margin-bottom:4px}
svg.chart{width:100%;height:auto;background:#fff}
.grid{stroke:#eee}.axis{stroke:#888}.tick{font-size:11px;fill:#555}.label{font-size:12px;fill:#333}
.series{fill:none;stroke-width:2;stroke-linejoin:round}
.legend{list-style:none;padding:0;margin:4px 0;display:flex;flex-wrap:wrap;gap:4px 18px}
.legend svg{vertical-align:middle;margin-right:6px}
.note{color:#666}
`;

/**
 * Renders one result, or several overlaid (at most {@link REPORT_RESULTS_MAX}), as a complete
 * HTML document.
 */
export function renderHtmlReport(
  input: BenchResult | readonly BenchResult[],
  options: HtmlReportOptions = {},
): string {
  const results: readonly BenchResult[] = Array.isArray(input) ? input : [input as BenchResult];
  if (results.length === 0 || results.length > REPORT_RESULTS_MAX)
    throw new Error(`a report shows 1..${REPORT_RESULTS_MAX} results, got ${results.length}`);
  const labels = results.map(
    (_, i) => options.labels?.[i] ?? (results.length === 1 ? '' : `run ${i + 1}`),
  );
  const first = results[0] as BenchResult;
  const title = options.title ?? `Sluice benchmark: ${first.kind}`;
  const charts = percentileChart(results, labels) + timelineCharts(results, labels);
  const chartsOrNote =
    charts === ''
      ? '<p class="note">This result has no latency percentiles or timeline to plot.</p>'
      : charts;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${CSS}</style>
</head>
<body>
<h1>${escapeHtml(title)}</h1>
<p class="note">${escapeHtml(results.map((r, i) => `${labels[i] ? `${labels[i]}: ` : ''}${r.kind}, started ${r.startedAt}`).join('; '))}</p>
${chartsOrNote}
${summaryTables(results, labels)}
</body>
</html>
`;
}
