/**
 * The HTML benchmark report opened in headless Chromium (the system package, driven by
 * playwright-core): the charts render as SVG paths with real geometry, the page logs no error and
 * requests nothing, and text from the result is escaped. Plus the pure helpers of the module.
 */

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  escapeHtml,
  niceStep,
  percentileX,
  renderHtmlReport,
} from '../../src/bench/report-html.js';
import type { BenchResult } from '../../src/bench/result.js';
import { fakeResult } from '../support/bench-docs.js';
import { ensureChromium } from '../support/chromium.js';

describe('helpers', () => {
  it('places percentiles on the 1/(1-p) axis and escapes text', () => {
    expect(percentileX(0)).toBe(0);
    expect(percentileX(90)).toBeCloseTo(1, 12);
    expect(percentileX(99.9)).toBeCloseTo(3, 9);
    expect(percentileX(99.999)).toBeCloseTo(5, 6);
    expect(niceStep(730, 6)).toBe(200);
    expect(niceStep(0.07, 6)).toBeCloseTo(0.02, 12);
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe(
      '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;',
    );
  });

  it('refuses no results and too many', () => {
    expect(() => renderHtmlReport([])).toThrow(/1\.\.8/);
    expect(() => renderHtmlReport(Array.from({ length: 9 }, () => fakeResult()))).toThrow(/1\.\.8/);
  });
});

/** The parts of an SVGPathElement used here (the project compiles without the DOM library). */
interface SvgPathLike {
  getBBox(): { width: number; height: number };
  getTotalLength(): number;
  getAttribute(name: string): string | null;
  closest(selector: string): { id: string } | null;
}

interface PageReport {
  errors: string[];
  requests: string[];
}

interface PathGeometry {
  figure: string;
  label: string;
  length: number;
  width: number;
  height: number;
  segments: number;
  d: string;
}

describe('in headless Chromium', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-report-'));
  let browser: Browser;

  beforeAll(async () => {
    const executablePath = ensureChromium();
    if (executablePath === null)
      throw new Error('chromium is not installed and could not be installed');
    browser = await chromium.launch({ executablePath, headless: true });
  }, 600_000);

  afterAll(async () => {
    await browser?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function open(name: string, html: string): Promise<{ page: Page; report: PageReport }> {
    const path = join(dir, name);
    writeFileSync(path, html);
    const url = pathToFileURL(path).href;
    const page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
    const report: PageReport = { errors: [], requests: [] };
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning')
        report.errors.push(`${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => report.errors.push(`pageerror: ${e.message}`));
    page.on('request', (r) => {
      if (r.url() !== url) report.requests.push(r.url());
    });
    await page.goto(url, { waitUntil: 'load' });
    return { page, report };
  }

  function geometry(page: Page): Promise<PathGeometry[]> {
    return page.$$eval('figure path.series', (paths) =>
      paths.map((p) => {
        const path = p as unknown as SvgPathLike;
        const box = path.getBBox();
        const d = path.getAttribute('d') ?? '';
        return {
          figure: path.closest('figure')?.id ?? '',
          label: path.getAttribute('data-label') ?? '',
          length: path.getTotalLength(),
          width: box.width,
          height: box.height,
          segments: (d.match(/[ML]/g) ?? []).length,
          d,
        };
      }),
    );
  }

  /** The (x, y) points of a path's `d`, in SVG units (y grows downwards). */
  function points(d: string): [number, number][] {
    return [...d.matchAll(/[ML](-?[\d.]+) (-?[\d.]+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
  }

  it('draws the percentile, throughput and p99 charts of one result', async () => {
    const { page, report } = await open('one.html', renderHtmlReport(fakeResult()));
    const paths = await geometry(page);
    expect(paths.map((p) => `${p.figure}/${p.label}`)).toEqual([
      'latency-percentiles/produceAck',
      'latency-percentiles/endToEnd',
      'throughput-over-time/records/s',
      'p99-over-time/p99',
    ]);
    for (const p of paths) {
      expect(p.segments, p.label).toBeGreaterThanOrEqual(40);
      expect(p.length, p.label).toBeGreaterThan(300);
      expect(p.width, p.label).toBeGreaterThan(500); // the plot area is about 760 units wide
      expect(p.height, p.label).toBeGreaterThan(20);
    }
    // Latency grows with the percentile: x increases and y (downwards) never increases.
    for (const p of paths.filter((q) => q.figure === 'latency-percentiles')) {
      const pts = points(p.d);
      for (let i = 1; i < pts.length; i++) {
        expect(pts[i]?.[0]).toBeGreaterThan(pts[i - 1]?.[0] as number);
        expect(pts[i]?.[1]).toBeLessThanOrEqual(pts[i - 1]?.[1] as number);
      }
    }
    // The p99 series has gaps where an interval had no latency: several subpaths.
    const p99 = paths.find((p) => p.figure === 'p99-over-time') as PathGeometry;
    expect((p99.d.match(/M/g) ?? []).length).toBeGreaterThan(1);
    const ticks = await page.$$eval('#latency-percentiles text.tick', (ts) =>
      ts.map((t) => t.textContent),
    );
    for (const label of ['50%', '90%', '99%', '99.9%', '99.99%', '99.999%'])
      expect(ticks).toContain(label);
    // The 99.9% tick sits three decades right of 0%, like the data point at 99.9%.
    const tickX = await page.$$eval('#latency-percentiles text.tick', (ts) =>
      Object.fromEntries(ts.map((t) => [t.textContent, Number(t.getAttribute('x'))])),
    );
    const x0 = tickX['0%'] as number;
    expect(((tickX['99.9%'] as number) - x0) / ((tickX['90%'] as number) - x0)).toBeCloseTo(3, 1);
    const p99Cell = await page.locator('table tr', { hasText: 'produceAck' }).first().textContent();
    expect(p99Cell).toContain('5.2');
    expect(report.errors).toEqual([]);
    expect(report.requests).toEqual([]);
    await page.close();
  });

  it('overlays two results, escapes their labels and settings, and fetches nothing', async () => {
    const hostile = '<img src="http://127.0.0.1:9/x.png" onerror="console.error(1)">';
    const b = fakeResult({ throughputFactor: 0.9, latencyFactor: 1.3 });
    b.settings = { ...b.settings, note: `${hostile}</table><script>console.error(2)</script>` };
    const html = renderHtmlReport([fakeResult(), b], { labels: ['A', `B ${hostile}`] });
    const { page, report } = await open('two.html', html);
    const paths = await geometry(page);
    expect(paths.filter((p) => p.figure === 'latency-percentiles')).toHaveLength(4);
    expect(paths.filter((p) => p.figure === 'throughput-over-time')).toHaveLength(2);
    const dashes = await page.$$eval('#latency-percentiles path.series', (ps) =>
      ps.map((p) => p.getAttribute('stroke-dasharray')),
    );
    expect(new Set(dashes).size).toBe(2); // one line style per result
    expect(await page.locator('img').count()).toBe(0);
    expect(await page.locator('script').count()).toBe(0);
    expect(await page.locator('body').textContent()).toContain(hostile);
    // B is slower: its produceAck line lies above A's (smaller y) at the right end.
    const ack = paths.filter((p) => p.label.endsWith(': produceAck'));
    const lastY = (p: PathGeometry): number => points(p.d).at(-1)?.[1] as number;
    expect(lastY(ack[1] as PathGeometry)).toBeLessThan(lastY(ack[0] as PathGeometry));
    expect(report.errors).toEqual([]);
    expect(report.requests).toEqual([]);
    await page.close();
  });

  it('renders a micro result (metrics only) without charts or errors', async () => {
    const micro: BenchResult = {
      ...fakeResult({ kind: 'micro' }),
      latency: {},
      timeline: [],
      metrics: { 'crc32c 4 KiB: ops_per_s': { value: 1.5e6, unit: 'ops/s', better: 'higher' } },
    };
    const { page, report } = await open('micro.html', renderHtmlReport(micro));
    expect(await page.locator('path.series').count()).toBe(0);
    expect(await page.locator('table', { hasText: 'crc32c 4 KiB: ops_per_s' }).count()).toBe(1);
    expect(report.errors).toEqual([]);
    expect(report.requests).toEqual([]);
    await page.close();
  });
});
