/**
 * Golden frames: request bytes captured from real clients (kafkajs, kcat/librdkafka,
 * @platformatic/kafka) by `scripts/capture-golden.ts`, decoded with the generated codecs.
 * Each must decode to what the client was asked to send, and re-encode to the very same bytes
 * (so Sluice's encoder agrees with each client's, field for field).
 */

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeRequest, encodeRequest } from '../../src/protocol/frame.js';
import type { ProduceRequest } from '../../src/protocol/generated/produce.js';
import { decodeRecordBatch } from '../../src/protocol/records/record-batch.js';

const dir = join(import.meta.dirname, '..', 'fixtures', 'golden');

interface Capture {
  client: string;
  file: string;
  apiKey: number;
  apiVersion: number;
  direction: 'request' | 'response';
}

const all = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Capture[];
const manifest = all.filter((c) => c.direction === 'request');
const responses = all.filter((c) => c.direction === 'response');
const require = createRequire(import.meta.url);

/** kafkajs' own response parsers, by api key: decode(payload) then parse(decoded). */
const KAFKAJS_RESPONSE_MODULES: Record<number, string> = {
  18: 'apiVersions',
  3: 'metadata',
  0: 'produce',
  19: 'createTopics',
};

const clientIds: Record<string, string> = {
  kafkajs: 'golden-kafkajs',
  kcat: 'golden-kcat',
  platformatic: 'golden-platformatic',
};

function frameOf(c: Capture): Buffer {
  return Buffer.from(readFileSync(join(dir, c.file), 'utf8').trim(), 'hex');
}

describe('golden frames from real clients', () => {
  it('covers ApiVersions, Metadata and Produce from every client', () => {
    for (const client of Object.keys(clientIds)) {
      const keys = manifest.filter((c) => c.client === client).map((c) => c.apiKey);
      expect(keys, client).toEqual(expect.arrayContaining([18, 3, 0]));
    }
  });

  it.each(manifest.map((c) => [c.file, c] as const))(
    '%s decodes and re-encodes byte for byte',
    (_file, c) => {
      const frame = frameOf(c);
      const d = decodeRequest(frame);
      if (!d.ok) throw new Error(`${c.file}: ${d.error.message}`);
      expect(d.header).toMatchObject({
        apiKey: c.apiKey,
        apiVersion: c.apiVersion,
        clientId: clientIds[c.client],
      });
      const again = encodeRequest(
        c.apiKey,
        c.apiVersion,
        d.header.correlationId,
        d.header.clientId,
        d.body,
      );
      expect(again.subarray(4).toString('hex')).toBe(frame.toString('hex'));
    },
  );

  it.each(manifest.filter((c) => c.apiKey === 0).map((c) => [c.file, c] as const))(
    '%s carries the produced record',
    (_file, c) => {
      const d = decodeRequest(frameOf(c));
      if (!d.ok) throw new Error(d.error.message);
      const req = d.body as ProduceRequest;
      const topic = req.topicData[0];
      expect(topic?.name).toBe('golden');
      const records = topic?.partitionData[0]?.records;
      if (!records) throw new Error('no records');
      const batch = decodeRecordBatch(records);
      const values = batch.records.map((r) => r.value?.toString());
      expect(values).toEqual([c.client === 'kcat' ? 'hello' : 'v']);
      if (c.client !== 'kcat') expect(batch.records[0]?.key?.toString()).toBe('k');
    },
  );

  it.each(responses.filter((c) => c.client === 'kafkajs').map((c) => [c.file, c] as const))(
    "%s: Sluice's response parses with kafkajs' own decoder",
    async (_file, c) => {
      const dirName = KAFKAJS_RESPONSE_MODULES[c.apiKey];
      if (!dirName) throw new Error(`no kafkajs parser listed for api ${c.apiKey}`);
      const mod = require(
        `kafkajs/src/protocol/requests/${dirName}/v${c.apiVersion}/response.js`,
      ) as {
        decode(payload: Buffer): Promise<unknown>;
        parse(decoded: unknown): Promise<Record<string, unknown>>;
      };
      // The frame without its correlation id is what kafkajs hands to a response decoder.
      const parsed = await mod.parse(await mod.decode(frameOf(c).subarray(4)));
      if (c.apiKey === 3) {
        expect(parsed.brokers).toEqual([expect.objectContaining({ nodeId: 1 })]);
        expect(parsed.controllerId).toBe(1);
      }
      if (c.apiKey === 0) {
        const topics = parsed.topics as {
          topicName: string;
          partitions: { errorCode: number; baseOffset: string }[];
        }[];
        expect(topics[0]?.topicName).toBe('golden');
        expect(topics[0]?.partitions[0]).toMatchObject({ errorCode: 0, baseOffset: '0' });
      }
      if (c.apiKey === 18) expect(parsed.errorCode).toBe(0);
    },
  );
});
