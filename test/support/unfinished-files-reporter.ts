/**
 * A vitest reporter that names the test files that never finished.
 *
 * When the process running a test file dies (a native crash, an abort, a signal), vitest reports
 * only "Worker exited unexpectedly", without the file. This reporter remembers the last test case
 * each file reported started (the reports come in batches, so a crash can lose the latest) and, at
 * the end of the run, prints every file whose state is still queued or pending, with that test
 * case when there is one. It prints nothing when every file finished.
 *
 * Owned by vitest's main process; its hooks run on that thread only.
 */

import type { Reporter, TestCase, TestModule } from 'vitest/node';

export class UnfinishedFilesReporter implements Reporter {
  /** Last test case started, by module id. */
  private readonly lastStarted = new Map<string, string>();

  onTestCaseReady(testCase: TestCase): void {
    this.lastStarted.set(testCase.module.moduleId, testCase.fullName);
  }

  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    const unfinished = testModules.filter((m) => m.state() === 'queued' || m.state() === 'pending');
    if (unfinished.length === 0) return;
    const lines = unfinished.map((m) => {
      const last = this.lastStarted.get(m.moduleId);
      const where = last === undefined ? '' : `, last test reported started: "${last}"`;
      return `  ${m.relativeModuleId} (${m.state()}${where})`;
    });
    process.stderr.write(`\nTest files that did not finish:\n${lines.join('\n')}\n`);
  }
}
