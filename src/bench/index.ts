/**
 * The benchmark result format and the regression gate, for programs that drive `sluice bench`
 * results themselves (a CI step, a dashboard): validate a `sluice-bench/1` document, compare two,
 * render the HTML report.
 */

export {
  type Comparison,
  compareResults,
  type Thresholds,
} from './compare.js';
export { renderHtmlReport } from './report-html.js';
export { BENCH_SCHEMA, type BenchResult, validateResult } from './result.js';
