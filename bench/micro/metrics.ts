/**
 * What metrics cost on the broker's hot paths (they exist only with a metrics port):
 * - a request through the timing wrapper (`observeRequests`) against the bare handler: the
 *   difference is the per-request cost (two performance.now, one histogram bucket search);
 * - the per-partition produce accounting (`countProduce`, a batch header read and two additions);
 * - the owner's record counting for a fetch (`countRecords`: one 61-byte pread per batch), for
 *   1 MiB of 16 KiB and of 1 KiB batches from the page cache;
 * - one scrape of a broker-like registry with 100 partitions (off the hot path).
 */

import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Bench } from 'tinybench';
import { countRecords } from '../../src/broker/owner/owner-metrics.js';
import { FsFileIO } from '../../src/io/index.js';
import { BrokerMetrics, type MetricsSources } from '../../src/metrics/broker-metrics.js';
import { observeRequests } from '../../src/metrics/request-observer.js';
import { countProduce } from '../../src/metrics/traffic.js';
import { encodeRecordBatch } from '../../src/protocol/records/record-batch.js';
import { PartitionStateTable } from '../../src/threads/partition-state.js';
import { tempDir } from '../io/common.js';
import { addBench } from './harness.js';

const PARTITIONS = 100;

function sources(): MetricsSources {
  const state = PartitionStateTable.create(PARTITIONS);
  return {
    state,
    *partitions() {
      for (let p = 0; p < PARTITIONS; p++) yield { topic: 'bench', partition: p, slot: p };
    },
    logSizes: async () => new Map(),
    committedOffsets: () => [],
    workers: () => [],
    fsyncHistograms: () => [],
    fileCleanup: () => [],
    network: () => ({
      connectionsOpen: 0,
      connectionsTotal: 0,
      connectionsRefused: 0,
      protocolErrors: 0,
    }),
    readAhead: () => ({ kept: 0, served: 0, dropped: 0, keptNow: 0 }),
  };
}

function batchOf(records: number, valueBytes: number, baseOffset: number): Buffer {
  const value = Buffer.alloc(valueBytes, 7);
  return encodeRecordBatch({
    baseOffset,
    records: Array.from({ length: records }, () => ({ key: null, value, timestamp: 1 })),
  });
}

/** A page-cached file of `batchBytes`-sized batches adding up to about 1 MiB. */
function logFile(io: FsFileIO, dir: string, batchBytes: number): { fd: number; length: number } {
  const perBatch = Math.max(1, Math.floor(batchBytes / 110));
  const batches: Buffer[] = [];
  let length = 0;
  for (let offset = 0; length < 1024 * 1024; offset += perBatch) {
    const b = batchOf(perBatch, 100, offset);
    batches.push(b);
    length += b.length;
  }
  const fd = io.open(join(dir, `log-${batchBytes}`), 'create');
  io.pwrite(fd, Buffer.concat(batches), 0);
  return { fd, length };
}

export function registerMetricsBenches(bench: Bench): void {
  const metrics = new BrokerMetrics(sources());
  const frame = Buffer.alloc(64);
  frame.writeInt16BE(0, 0);
  frame.writeInt16BE(9, 2);
  const result = { chunks: [], release: () => undefined };
  const bare = async () => result;
  const timed = observeRequests(bare, { metrics, requestLog: null });
  const peer = { remote: '127.0.0.1:1' };
  bench.add('metrics: request, bare handler', async () => {
    (await bare()).release();
  });
  bench.add('metrics: request, timed (metrics on)', async () => {
    const r = await timed(frame, peer);
    r?.release();
  });

  const batch = batchOf(10, 100, 0);
  const request = [{ name: 'bench', partitionData: [{ index: 3, records: batch }] }];
  const responses = [{ partitionResponses: [{ errorCode: 0 }] }];
  addBench(bench, 'metrics: produce accounting, 1 partition', () => {
    countProduce(metrics, request, responses);
  });

  const dir = tempDir(tmpdir(), 'sluice-bench-metrics-');
  const io = new FsFileIO();
  for (const batchBytes of [16 * 1024, 1024]) {
    const f = logFile(io, dir, batchBytes);
    const slices = [{ fd: f.fd, position: 0, length: f.length }];
    addBench(
      bench,
      `metrics: owner countRecords, 1 MiB of ${batchBytes / 1024} KiB batches`,
      () => {
        if (countRecords(io, slices) <= 0) throw new Error('no records counted');
      },
      { unitsPerOp: f.length, unit: 'bytes' },
    );
  }
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));

  for (let p = 0; p < PARTITIONS; p++) metrics.produced('bench', p, 10, 1000);
  bench.add('metrics: scrape, 100 partitions', async () => {
    await metrics.text();
  });
}
