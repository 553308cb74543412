/**
 * A vitest reporter that names the test files that never finished.
 *
 * When the process running a test file dies (a native crash, an abort, a signal), vitest reports
 * only "Worker exited unexpectedly", without the file. This reporter remembers the last test case
 * each file reported started (the reports come in batches, so a crash can lose the latest) and, at
 * the end of the run, prints every file whose state is still queued or pending, with that test
 * case when there is one. It prints nothing when every file finished.
 *
 * With `SLUICE_TEST_SUMMARY=FILE` it also writes a `RunSummary` there as JSON, which `.ci/run`
 * reads to tell a run that failed only because test processes died from one with failed tests.
 *
 * Owned by vitest's main process; its hooks run on that thread only.
 */

import { writeFileSync } from 'node:fs';
import type { Reporter, SerializedError, TestCase, TestModule } from 'vitest/node';

export interface RunSummary {
  /** Files whose process died before they finished (relative to the project). */
  unfinished: string[];
  /** Files that finished with a failure. */
  failed: string[];
  /** Unhandled errors that say a test process exited unexpectedly. */
  processExitErrors: number;
  /** Every other unhandled error. */
  otherErrors: number;
}

export class UnfinishedFilesReporter implements Reporter {
  /** Last test case started, by module id. */
  private readonly lastStarted = new Map<string, string>();

  onTestCaseReady(testCase: TestCase): void {
    this.lastStarted.set(testCase.module.moduleId, testCase.fullName);
  }

  onTestRunEnd(
    testModules: ReadonlyArray<TestModule>,
    unhandledErrors: ReadonlyArray<SerializedError>,
  ): void {
    const unfinished = testModules.filter((m) => m.state() === 'queued' || m.state() === 'pending');
    if (unfinished.length > 0) {
      const lines = unfinished.map((m) => {
        const last = this.lastStarted.get(m.moduleId);
        const where = last === undefined ? '' : `, last test reported started: "${last}"`;
        return `  ${m.relativeModuleId} (${m.state()}${where})`;
      });
      process.stderr.write(`\nTest files that did not finish:\n${lines.join('\n')}\n`);
    }
    const summaryPath = process.env.SLUICE_TEST_SUMMARY;
    if (summaryPath === undefined || summaryPath === '') return;
    const processExitErrors = unhandledErrors.filter(isProcessExit).length;
    const summary: RunSummary = {
      unfinished: unfinished.map((m) => m.relativeModuleId),
      failed: testModules.filter((m) => m.state() === 'failed').map((m) => m.relativeModuleId),
      processExitErrors,
      otherErrors: unhandledErrors.length - processExitErrors,
    };
    writeFileSync(summaryPath, `${JSON.stringify(summary)}\n`);
  }
}

/** True for vitest's error about a test process that died ("Worker exited unexpectedly"). */
function isProcessExit(error: SerializedError): boolean {
  for (let e: SerializedError | undefined = error; e !== undefined; e = e.cause) {
    if (e.message.includes('Worker exited unexpectedly')) return true;
  }
  return false;
}
