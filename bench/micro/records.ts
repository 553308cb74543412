/**
 * RecordBatch v2: encode and decode 1,000 records of 100-byte values, Sluice against kafkajs'
 * own record batch encoder/decoder; the broker's header-only produce validation; compressed
 * encodes. Units: records per call (validation: bytes per call).
 */

import { createRequire } from 'node:module';
import type { Bench } from 'tinybench';
import { COMPRESSION_NAMES, type CompressionId } from '../../src/protocol/records/compression.js';
import {
  decodeRecordBatch,
  encodeRecordBatch,
  type ProduceRecord,
} from '../../src/protocol/records/record-batch.js';
import { validateRecordBatches } from '../../src/protocol/records/validate.js';
import { addBench } from './harness.js';

const require = createRequire(import.meta.url);

interface KafkajsEncoder {
  buffer: Buffer;
}
const kjsRecordBatch = require('kafkajs/src/protocol/recordBatch/v0/index.js') as {
  RecordBatch(opts: Record<string, unknown>): Promise<KafkajsEncoder>;
};
const kjsRecord = require('kafkajs/src/protocol/recordBatch/record/v0/index.js') as (
  opts: Record<string, unknown>,
) => KafkajsEncoder;
const kjsBatchDecoder = require('kafkajs/src/protocol/recordBatch/v0/decoder.js') as (
  decoder: unknown,
) => Promise<unknown>;
const KjsDecoder = require('kafkajs/src/protocol/decoder.js') as new (buf: Buffer) => unknown;

const RECORDS = 1000;
const VALUE_BYTES = 100;
const T0 = 1_700_000_000_000;

function makeRecords(): ProduceRecord[] {
  return Array.from({ length: RECORDS }, (_, i) => {
    const value = Buffer.alloc(VALUE_BYTES);
    for (let j = 0; j < VALUE_BYTES; j++) value[j] = 97 + ((i * 7 + j) % 26);
    return { key: null, value, timestamp: T0 + i };
  });
}

/** What kafkajs' producer does per batch: one Record encoder per message, then the batch. */
function kafkajsEncode(
  records: readonly ProduceRecord[],
  compression: number,
): Promise<KafkajsEncoder> {
  const first = (records[0] as ProduceRecord).timestamp;
  return kjsRecordBatch.RecordBatch({
    compression,
    firstTimestamp: first,
    maxTimestamp: (records[records.length - 1] as ProduceRecord).timestamp,
    lastOffsetDelta: records.length - 1,
    records: records.map((r, i) =>
      kjsRecord({
        offsetDelta: i,
        timestampDelta: r.timestamp - first,
        key: r.key,
        value: r.value,
      }),
    ),
  });
}

export function registerRecordBenches(bench: Bench): void {
  const records = makeRecords();
  const perBatch = { unitsPerOp: RECORDS, unit: 'records' };
  const encoded = encodeRecordBatch({ records });
  let _sink = 0;

  addBench(
    bench,
    'batch encode 1000x100B sluice',
    () => {
      _sink ^= encodeRecordBatch({ records }).length;
    },
    perBatch,
  );
  addBench(
    bench,
    'batch encode 1000x100B kafkajs',
    async () => {
      _sink ^= (await kafkajsEncode(records, 0)).buffer.length;
    },
    perBatch,
  );
  addBench(
    bench,
    'batch decode 1000x100B sluice',
    () => {
      _sink ^= decodeRecordBatch(encoded).records.length;
    },
    perBatch,
  );
  addBench(
    bench,
    'batch decode 1000x100B kafkajs',
    async () => {
      await kjsBatchDecoder(new KjsDecoder(encoded));
    },
    perBatch,
  );
  addBench(
    bench,
    'batch validate (header + CRC) 1000x100B',
    () => {
      _sink ^= validateRecordBatches(encoded).ok ? 1 : 0;
    },
    { unitsPerOp: encoded.length, unit: 'bytes' },
  );
  for (const compression of [1, 2, 3, 4] as CompressionId[]) {
    const name = COMPRESSION_NAMES[compression];
    addBench(
      bench,
      `batch encode 1000x100B sluice ${name}`,
      () => {
        _sink ^= encodeRecordBatch({ records, compression }).length;
      },
      perBatch,
    );
    const compressed = encodeRecordBatch({ records, compression });
    addBench(
      bench,
      `batch decode 1000x100B sluice ${name}`,
      () => {
        _sink ^= decodeRecordBatch(compressed).records.length;
      },
      perBatch,
    );
  }
}
