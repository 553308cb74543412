/**
 * TopicRegistry: the broker's durable list of topics (name, id, partition count, config
 * overrides) and its cluster identity.
 *
 * On-disk format: `<dataDir>/meta.json`, one JSON document written atomically (temp file,
 * fdatasync, rename, directory fsync, through FileIO.writeFileAtomic):
 *
 *   { "version": 1, "clusterId": "<22-char base64url>", "nodeId": 1,
 *     "topics": [ { "name": "t", "id": "<32 hex>", "partitions": 3,
 *                   "configs": { "retention.ms": 1000 } } ] }
 *
 * A change is durable before the request that made it is answered; a change whose write fails is
 * undone in memory too (except `forget`, for a failed creation that could not be undone on
 * disk). Partition data lives in the partition directories; a partition directory without a
 * topic here is an orphan (of an interrupted DeleteTopics, or of a failed CreateTopics or
 * CreatePartitions) and is removed on start by the broker, unless this file was missing.
 *
 * Owned by the main (network) thread; not thread-safe. Workers learn about topics through
 * commands, never by reading this file.
 */

import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { FileIO } from '../io/file-io.js';

export const META_FILE = 'meta.json';
const META_VERSION = 1;

/** Kafka's limits on topic names. */
export const TOPIC_NAME_BYTES_MAX = 249;
const TOPIC_NAME_PATTERN = /^[a-zA-Z0-9._-]+$/;

export interface TopicRecord {
  readonly name: string;
  /** 16 random bytes (Kafka's topic id), hex in the file. */
  readonly id: Buffer;
  partitions: number;
  configs: Record<string, string | number | boolean>;
}

interface MetaFile {
  version: number;
  clusterId: string;
  nodeId: number;
  topics: { name: string; id: string; partitions: number; configs: TopicRecord['configs'] }[];
}

/**
 * The file's contents, or a clear error naming it: a damaged `meta.json` stops the start (the
 * partition directories are left untouched) rather than failing later on a missing field.
 */
function parseMeta(raw: Buffer, path: string): MetaFile {
  const damaged = (why: string): Error =>
    new Error(
      `${path} is damaged (${why}); restore it from a backup: the partition data is untouched`,
    );
  let meta: unknown;
  try {
    meta = JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw damaged((err as Error).message);
  }
  const m = meta as Partial<MetaFile> | null;
  if (typeof m !== 'object' || m === null) throw damaged('not a JSON object');
  if (typeof m.clusterId !== 'string' || typeof m.nodeId !== 'number' || !Array.isArray(m.topics))
    throw damaged('clusterId, nodeId or topics missing');
  return m as MetaFile;
}

/** Why a topic name is invalid, or null when it is valid (Kafka's rules). */
export function topicNameProblem(name: string): string | null {
  if (name.length === 0) return 'topic name is empty';
  if (name === '.' || name === '..') return 'topic name cannot be "." or ".."';
  if (name.length > TOPIC_NAME_BYTES_MAX) {
    return `topic name is longer than ${TOPIC_NAME_BYTES_MAX} characters`;
  }
  if (!TOPIC_NAME_PATTERN.test(name)) {
    return 'topic name may contain only ASCII letters, digits, ".", "_" and "-"';
  }
  return null;
}

export class TopicRegistry {
  private readonly topics = new Map<string, TopicRecord>();
  private readonly byId = new Map<string, TopicRecord>();

  private constructor(
    private readonly io: FileIO,
    private readonly dataDir: string,
    readonly clusterId: string,
    readonly nodeId: number,
    /** True when `meta.json` was missing and this open created it (it knows no topic yet). */
    readonly created: boolean,
  ) {}

  /** Loads `meta.json`, or creates it with a fresh cluster id. */
  static open(io: FileIO, dataDir: string, nodeId: number): TopicRegistry {
    io.mkdirp(dataDir);
    const raw = io.readFile(join(dataDir, META_FILE));
    if (raw === null) {
      const clusterId = randomBytes(16).toString('base64url');
      const reg = new TopicRegistry(io, dataDir, clusterId, nodeId, true);
      reg.save();
      return reg;
    }
    const meta = parseMeta(raw, join(dataDir, META_FILE));
    if (meta.version !== META_VERSION) {
      throw new Error(`${META_FILE}: unsupported version ${meta.version}`);
    }
    if (meta.nodeId !== nodeId) {
      throw new Error(
        `${META_FILE}: data dir belongs to node ${meta.nodeId}, this broker is node ${nodeId}`,
      );
    }
    const reg = new TopicRegistry(io, dataDir, meta.clusterId, nodeId, false);
    for (const t of meta.topics) {
      reg.put({
        name: t.name,
        id: Buffer.from(t.id, 'hex'),
        partitions: t.partitions,
        configs: t.configs,
      });
    }
    return reg;
  }

  private put(t: TopicRecord): void {
    this.topics.set(t.name, t);
    this.byId.set(t.id.toString('hex'), t);
  }

  get(name: string): TopicRecord | undefined {
    return this.topics.get(name);
  }

  getById(id: Uint8Array): TopicRecord | undefined {
    return this.byId.get(Buffer.from(id).toString('hex'));
  }

  all(): TopicRecord[] {
    return [...this.topics.values()];
  }

  get size(): number {
    return this.topics.size;
  }

  /** Adds a topic; `id` is given in cluster mode (the cluster-wide id), random otherwise. */
  create(
    name: string,
    partitions: number,
    configs: TopicRecord['configs'],
    id: Buffer = randomBytes(16),
  ): TopicRecord {
    if (this.topics.has(name)) throw new Error(`topic ${name} exists`);
    const t: TopicRecord = { name, id, partitions, configs };
    this.change(
      () => this.put(t),
      () => this.remove(t),
    );
    return t;
  }

  delete(name: string): TopicRecord | undefined {
    const t = this.topics.get(name);
    if (!t) return undefined;
    this.change(
      () => this.remove(t),
      () => this.put(t),
    );
    return t;
  }

  setPartitions(name: string, partitions: number): void {
    const t = this.topics.get(name);
    if (!t) throw new Error(`no topic ${name}`);
    if (partitions < t.partitions) throw new Error('partition count can only grow');
    this.setField(t, 'partitions', partitions);
  }

  setConfigs(name: string, configs: TopicRecord['configs']): void {
    const t = this.topics.get(name);
    if (!t) throw new Error(`no topic ${name}`);
    this.setField(t, 'configs', configs);
  }

  private setField<K extends 'partitions' | 'configs'>(
    t: TopicRecord,
    key: K,
    value: TopicRecord[K],
  ): void {
    const before = t[key];
    this.change(
      () => {
        t[key] = value;
      },
      () => {
        t[key] = before;
      },
    );
  }

  /**
   * Removes a topic from memory only, when even its removal could not be written: the file keeps
   * listing it, so a restart brings it back (with its partitions' data, which stays on disk).
   */
  forget(name: string): void {
    const t = this.topics.get(name);
    if (t) this.remove(t);
  }

  /**
   * Applies a change and writes the metadata file; when the write fails (a full disk) the change is
   * undone, so this registry never holds what its file does not, and the error is rethrown.
   */
  private change(apply: () => void, undo: () => void): void {
    apply();
    try {
      this.save();
    } catch (err) {
      undo();
      throw err;
    }
  }

  private remove(t: TopicRecord): void {
    this.topics.delete(t.name);
    this.byId.delete(t.id.toString('hex'));
  }

  private save(): void {
    const meta: MetaFile = {
      version: META_VERSION,
      clusterId: this.clusterId,
      nodeId: this.nodeId,
      topics: this.all().map((t) => ({
        name: t.name,
        id: t.id.toString('hex'),
        partitions: t.partitions,
        configs: t.configs,
      })),
    };
    this.io.writeFileAtomic(
      join(this.dataDir, META_FILE),
      Buffer.from(`${JSON.stringify(meta, null, 1)}\n`),
    );
  }
}
