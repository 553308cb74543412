/**
 * RawClient: a minimal Kafka protocol client over one TCP connection, for tests that need to
 * control exactly which bytes go out and to observe exactly which frames come back (pipelining,
 * acks=0, garbage input). Requests are encoded with the project's own codecs.
 *
 * Owned by the test's thread; not thread-safe. Test-only.
 */

import { createConnection, type Socket } from 'node:net';
import { decodeResponse, encodeRequest } from '../../src/protocol/frame.js';
import type { CreateTopicsResponse } from '../../src/protocol/generated/create-topics.js';
import type { FetchResponse } from '../../src/protocol/generated/fetch.js';
import { defaultFetchRequest } from '../../src/protocol/generated/fetch.js';
import {
  defaultMetadataRequest,
  type MetadataResponse,
} from '../../src/protocol/generated/metadata.js';
import {
  defaultProduceRequest,
  type ProduceResponse,
} from '../../src/protocol/generated/produce.js';
import {
  type DecodedRecord,
  decodeRecordBatches,
  encodeRecordBatch,
} from '../../src/protocol/records/index.js';

export const API = {
  produce: 0,
  fetch: 1,
  metadata: 3,
  apiVersions: 18,
  createTopics: 19,
} as const;

/** Versions the tests speak (all classic encodings, served by Sluice). */
export const V = { produce: 8, fetch: 11, metadata: 8, createTopics: 4 } as const;

/** Largest response frame the client accepts (a limit, so a broken size cannot hang a test). */
const RESPONSE_BYTES_MAX = 256 * 1024 * 1024;

export interface RawFrame {
  correlationId: number;
  /** The frame without its size prefix. */
  bytes: Buffer;
}

export class RawClient {
  /** Every response frame, in arrival order. */
  readonly frames: RawFrame[] = [];
  private pending: Buffer = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  private nextCorrelationId = 1;
  private closedFlag = false;
  /** Resolves when the connection is closed by either side. */
  readonly closed: Promise<void>;

  private constructor(readonly socket: Socket) {
    this.closed = new Promise((resolve) => {
      socket.on('close', () => {
        this.closedFlag = true;
        this.wake();
        resolve();
      });
    });
    socket.on('error', () => undefined);
    socket.on('data', (d: Buffer) => this.onData(d));
  }

  static connect(port: number, host = '127.0.0.1'): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = createConnection({ host, port });
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        socket.setNoDelay(true);
        resolve(new RawClient(socket));
      });
    });
  }

  get isClosed(): boolean {
    return this.closedFlag;
  }

  private onData(d: Buffer): void {
    this.pending = this.pending.length ? Buffer.concat([this.pending, d]) : d;
    while (this.pending.length >= 4) {
      const size = this.pending.readInt32BE(0);
      if (size < 4 || size > RESPONSE_BYTES_MAX) throw new Error(`bad response size ${size}`);
      if (this.pending.length < 4 + size) break;
      const bytes = Buffer.from(this.pending.subarray(4, 4 + size));
      this.pending = this.pending.subarray(4 + size);
      this.frames.push({ correlationId: bytes.readInt32BE(0), bytes });
    }
    this.wake();
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Writes raw bytes (for malformed input). */
  writeRaw(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** Encodes and writes a request; returns its correlation id. */
  send(apiKey: number, apiVersion: number, body: unknown): number {
    const correlationId = this.nextCorrelationId++;
    this.socket.write(encodeRequest(apiKey, apiVersion, correlationId, 'raw-test', body));
    return correlationId;
  }

  /** Waits until `pred` holds (re-checked on every frame and on close), bounded by timeoutMs. */
  async waitFor(pred: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Waits for the response with this correlation id and decodes it. */
  async response<T>(
    apiKey: number,
    apiVersion: number,
    correlationId: number,
    timeoutMs = 10_000,
  ): Promise<T> {
    const find = () => this.frames.find((f) => f.correlationId === correlationId);
    await this.waitFor(
      () => find() !== undefined || this.closedFlag,
      timeoutMs,
      `response ${correlationId}`,
    );
    const frame = find();
    if (!frame) throw new Error(`connection closed before response ${correlationId}`);
    const decoded = decodeResponse(apiKey, apiVersion, frame.bytes);
    if (!decoded.ok) throw new Error(`bad response ${correlationId}: ${decoded.message}`);
    return decoded.body as T;
  }

  async request<T>(
    apiKey: number,
    apiVersion: number,
    body: unknown,
    timeoutMs = 10_000,
  ): Promise<T> {
    return this.response<T>(apiKey, apiVersion, this.send(apiKey, apiVersion, body), timeoutMs);
  }

  // ---- typed helpers ----

  metadataBody(topics: string[] | null = null): unknown {
    return {
      ...defaultMetadataRequest(),
      topics: topics === null ? null : topics.map((name) => ({ topicId: Buffer.alloc(16), name })),
      allowAutoTopicCreation: false,
    };
  }

  metadata(topics: string[] | null = null): Promise<MetadataResponse> {
    return this.request<MetadataResponse>(API.metadata, V.metadata, this.metadataBody(topics));
  }

  async createTopic(
    name: string,
    partitions = 1,
    configs: Record<string, string> = {},
  ): Promise<void> {
    const res = await this.request<CreateTopicsResponse>(API.createTopics, V.createTopics, {
      topics: [
        {
          name,
          numPartitions: partitions,
          replicationFactor: 1,
          assignments: [],
          configs: Object.entries(configs).map(([n, value]) => ({ name: n, value })),
        },
      ],
      timeoutMs: 10_000,
      validateOnly: false,
    });
    const code = res.topics[0]?.errorCode;
    if (code !== 0 && code !== 36) throw new Error(`CreateTopics ${name}: error ${code}`);
  }

  produceBody(topic: string, partition: number, records: Buffer, acks = -1): unknown {
    return {
      ...defaultProduceRequest(),
      acks,
      timeoutMs: 10_000,
      topicData: [{ name: topic, partitionData: [{ index: partition, records }] }],
    };
  }

  /** Produces one batch and returns the partition's answer. */
  async produce(
    topic: string,
    partition: number,
    records: Buffer,
    acks = -1,
  ): Promise<{ errorCode: number; baseOffset: number }> {
    const res = await this.request<ProduceResponse>(
      API.produce,
      V.produce,
      this.produceBody(topic, partition, records, acks),
    );
    const p = res.responses[0]?.partitionResponses[0];
    if (!p) throw new Error('produce response without a partition');
    return { errorCode: p.errorCode, baseOffset: p.baseOffset };
  }

  fetchBody(
    topic: string,
    partition: number,
    offset: number,
    maxWaitMs = 0,
    maxBytes = 1 << 20,
  ): unknown {
    return {
      ...defaultFetchRequest(),
      replicaId: -1,
      maxWaitMs,
      minBytes: 1,
      maxBytes,
      isolationLevel: 0,
      topics: [
        {
          topic,
          topicId: Buffer.alloc(16),
          partitions: [
            {
              partition,
              currentLeaderEpoch: -1,
              fetchOffset: offset,
              lastFetchedEpoch: -1,
              logStartOffset: -1,
              partitionMaxBytes: maxBytes,
              replicaDirectoryId: Buffer.alloc(16),
            },
          ],
        },
      ],
    };
  }

  /** One Fetch; returns the partition's error code, high watermark and decoded records. */
  async fetch(
    topic: string,
    partition: number,
    offset: number,
    maxWaitMs = 0,
    maxBytes = 1 << 20,
  ): Promise<{ errorCode: number; highWatermark: number; records: DecodedRecord[] }> {
    const res = await this.request<FetchResponse>(
      API.fetch,
      V.fetch,
      this.fetchBody(topic, partition, offset, maxWaitMs, maxBytes),
    );
    const p = res.responses[0]?.partitions[0];
    if (!p) throw new Error('fetch response without a partition');
    const raw = p.records;
    if (raw !== null && !Buffer.isBuffer(raw)) throw new Error('decoded records are not bytes');
    const records = raw === null ? [] : decodeRecordBatches(raw).batches.flatMap((b) => b.records);
    return { errorCode: p.errorCode, highWatermark: p.highWatermark, records };
  }

  /** Reads a partition from `from` up to its high watermark. */
  async readAll(topic: string, partition: number, from = 0): Promise<DecodedRecord[]> {
    const out: DecodedRecord[] = [];
    let offset = from;
    for (let round = 0; round < 100_000; round++) {
      const r = await this.fetch(topic, partition, offset);
      if (r.errorCode !== 0)
        throw new Error(`fetch ${topic}-${partition}@${offset}: error ${r.errorCode}`);
      const fresh = r.records.filter((rec) => rec.offset >= offset);
      out.push(...fresh);
      const last = fresh.at(-1);
      if (last) offset = last.offset + 1;
      if (offset >= r.highWatermark || !last) return out;
    }
    throw new Error('readAll did not finish');
  }

  close(): void {
    this.socket.destroy();
  }
}

/** The records' values as strings (a null value as ''). */
export function valuesOf(records: readonly { value: Buffer | null }[]): string[] {
  return records.map((r) => r.value?.toString() ?? '');
}

/** A batch of string values (no keys), CreateTime now. */
export function batchOf(values: string[]): Buffer {
  const timestamp = Date.now();
  return encodeRecordBatch({
    records: values.map((v) => ({ key: null, value: Buffer.from(v), timestamp })),
  });
}
