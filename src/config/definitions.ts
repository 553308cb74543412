/**
 * Broker and topic configuration keys, with Kafka's names where Kafka has one.
 *
 * One table describes every key: its type, default, documentation and, for topic-level keys, the
 * broker-level key that supplies the topic default (Kafka's "synonym", e.g. `log.segment.bytes`
 * -> `segment.bytes`). DescribeConfigs, `--set key=value`, config files and validation all read
 * this table, so they cannot drift apart. Keys Sluice adds beyond Kafka's are marked in their doc.
 */

/** Kafka's ConfigType codes (DescribeConfigs v3+). */
export const ConfigType = {
  BOOLEAN: 1,
  STRING: 2,
  INT: 3,
  SHORT: 4,
  LONG: 5,
  DOUBLE: 6,
  LIST: 7,
} as const;

/** Kafka's ConfigSource codes (DescribeConfigs v1+). */
export const ConfigSource = {
  UNKNOWN: 0,
  TOPIC_CONFIG: 1,
  DYNAMIC_BROKER_CONFIG: 2,
  DYNAMIC_DEFAULT_BROKER_CONFIG: 3,
  STATIC_BROKER_CONFIG: 4,
  DEFAULT_CONFIG: 5,
} as const;

export type ConfigValue = number | string | boolean;

interface BaseDef {
  readonly name: string;
  readonly doc: string;
  /** Broker-level keys only: the topic-level key this one supplies the default for. */
  readonly topicKey?: string;
}

export interface IntDef extends BaseDef {
  readonly type: 'int' | 'long';
  readonly default: number;
  readonly min?: number;
  readonly max?: number;
}

export interface BoolDef extends BaseDef {
  readonly type: 'boolean';
  readonly default: boolean;
}

export interface StringDef extends BaseDef {
  readonly type: 'string';
  readonly default: string;
  /** When present, the value must be one of these. */
  readonly oneOf?: readonly string[];
}

export type ConfigDef = IntDef | BoolDef | StringDef;

const GIB = 1024 * 1024 * 1024;
const MIB = 1024 * 1024;
const DAY_MS = 24 * 60 * 60 * 1000;
const INT32_MAX = 2147483647;

export const FLUSH_POLICIES = ['always', 'interval', 'never'] as const;
export const CLEANUP_POLICIES = ['delete', 'compact', 'compact,delete'] as const;
export type CleanupPolicy = (typeof CLEANUP_POLICIES)[number];
export type FlushPolicy = (typeof FLUSH_POLICIES)[number];
export const TIMESTAMP_TYPES = ['CreateTime', 'LogAppendTime'] as const;
/** `fetch.send.method`, and the type `NativeMethod` (src/io/socket-sendfile.ts) is made of them. */
export const FETCH_SEND_METHODS = ['sendfile', 'splice', 'mapped'] as const;

/** Topic-level keys (CreateTopics configs, DescribeConfigs on a topic, IncrementalAlterConfigs). */
export const TOPIC_CONFIGS: readonly ConfigDef[] = [
  {
    name: 'cleanup.policy',
    type: 'string',
    default: 'delete',
    oneOf: CLEANUP_POLICIES,
    doc:
      'delete: remove whole old segments by retention.ms/retention.bytes; compact: keep the latest ' +
      'record per key (closed segments rewritten); compact,delete: both.',
  },
  {
    name: 'delete.retention.ms',
    type: 'long',
    default: 86_400_000,
    min: 0,
    doc: 'Compacted topics: how long the latest tombstone of a key is kept before compaction drops it.',
  },
  {
    name: 'retention.ms',
    type: 'long',
    default: 7 * DAY_MS,
    min: -1,
    doc: 'Delete whole segments whose newest record is older than this; -1 keeps them forever.',
  },
  {
    name: 'retention.bytes',
    type: 'long',
    default: -1,
    min: -1,
    doc: 'Delete the oldest segments while the partition is larger than this; -1 means no limit.',
  },
  {
    name: 'segment.bytes',
    type: 'int',
    default: GIB,
    min: 1024,
    max: INT32_MAX,
    doc: 'Roll to a new segment file when the active one reaches this size.',
  },
  {
    name: 'segment.ms',
    type: 'long',
    default: 7 * DAY_MS,
    min: 1,
    doc: 'Roll to a new segment when the active one is older than this.',
  },
  {
    name: 'segment.index.bytes',
    type: 'int',
    default: 10 * MIB,
    min: 4096,
    doc: 'Maximum size of the offset index of one segment; the segment rolls when it is full.',
  },
  {
    name: 'index.interval.bytes',
    type: 'int',
    default: 4096,
    min: 0,
    doc: 'Bytes of log between two entries of the sparse offset index.',
  },
  {
    name: 'max.message.bytes',
    type: 'int',
    default: 1048588,
    min: 0,
    doc: 'Largest record batch (after compression) the topic accepts.',
  },
  {
    name: 'message.timestamp.type',
    type: 'string',
    default: 'CreateTime',
    oneOf: TIMESTAMP_TYPES,
    doc: 'CreateTime keeps the producer timestamp; LogAppendTime stamps the broker time on append.',
  },
  {
    name: 'flush.policy',
    type: 'string',
    default: 'never',
    oneOf: FLUSH_POLICIES,
    doc:
      'Sluice: when appends are fdatasync-ed. always: before acking (grouped: concurrent appends ' +
      'share one fdatasync); interval: every flush.ms / flush.messages; never: page cache only ' +
      "(Kafka's default; durability comes from replication).",
  },
  {
    name: 'flush.ms',
    type: 'long',
    default: 1000,
    min: 1,
    doc: 'With flush.policy=interval: fdatasync at least this often.',
  },
  {
    name: 'flush.messages',
    type: 'long',
    default: -1,
    min: -1,
    doc: 'With flush.policy=interval: fdatasync after this many records; -1 means no count limit.',
  },
  {
    name: 'min.insync.replicas',
    type: 'int',
    default: 1,
    min: 1,
    doc: 'acks=all needs at least this many in-sync replicas.',
  },
];

/** Broker-level keys. */
export const BROKER_CONFIGS: readonly ConfigDef[] = [
  { name: 'node.id', type: 'int', default: 1, min: 0, doc: 'This broker id.' },
  {
    name: 'host',
    type: 'string',
    default: '127.0.0.1',
    doc: 'Sluice: address to listen on.',
  },
  { name: 'port', type: 'int', default: 9092, min: 0, max: 65535, doc: 'Sluice: TCP port.' },
  {
    name: 'metrics.port',
    type: 'int',
    default: -1,
    min: -1,
    max: 65535,
    doc: 'Sluice: port of the Prometheus endpoint (GET /metrics) on the broker host; 0 picks a free one, -1 serves none.',
  },
  {
    name: 'log.requests.enable',
    type: 'boolean',
    default: false,
    doc: 'Sluice: log one info line per request (api key, version, correlation id, latency).',
  },
  {
    name: 'advertised.host',
    type: 'string',
    default: '',
    doc: 'Sluice: host clients are told to connect to (Metadata); empty means the listen host.',
  },
  {
    name: 'advertised.port',
    type: 'int',
    default: 0,
    min: 0,
    max: 65535,
    doc: 'Sluice: port clients are told to connect to; 0 means the bound port.',
  },
  { name: 'log.dirs', type: 'string', default: './data', doc: 'Data directory.' },
  {
    name: 'num.partitions',
    type: 'int',
    default: 1,
    min: 1,
    doc: 'Partitions of an auto-created topic, and of CreateTopics with -1.',
  },
  {
    name: 'max.partitions',
    type: 'int',
    default: -1,
    min: -1,
    doc:
      'Sluice: most partitions a single broker hosts; CreateTopics and CreatePartitions past it ' +
      'get POLICY_VIOLATION. -1: from the open-file limit (each open partition holds a file) ' +
      'less a reserve, and the routing table size.',
  },
  {
    name: 'default.replication.factor',
    type: 'int',
    default: 1,
    min: 1,
    doc: 'Replication factor of an auto-created topic, and of CreateTopics with -1.',
  },
  {
    name: 'auto.create.topics.enable',
    type: 'boolean',
    default: true,
    doc: 'Create a topic on Metadata/Produce for an unknown topic name.',
  },
  {
    name: 'delete.topic.enable',
    type: 'boolean',
    default: true,
    doc: 'Allow DeleteTopics.',
  },
  {
    name: 'num.partition.workers',
    type: 'int',
    default: 0,
    min: 0,
    max: 64,
    doc: 'Sluice: partition-owner worker threads (at most; each starts with the first partition routed to it); 0 means one per CPU core.',
  },
  {
    name: 'partition.workers.batch.scheduling',
    type: 'boolean',
    default: true,
    doc: 'Sluice: on Linux (with the native addon), partition-owner threads run under SCHED_BATCH, so that an owner woken by the network thread does not preempt it on a busy CPU; false keeps the default policy.',
  },
  {
    name: 'fetch.send.method',
    type: 'string',
    default: 'sendfile',
    oneOf: FETCH_SEND_METHODS,
    doc:
      'Sluice: how the native addon sends the file slices of large Fetch responses, on the thread ' +
      'pool. sendfile: zero-copy page references (the default); splice: through a 1 MiB pipe; ' +
      'mapped: mmap 8 MiB windows and write them, one copy; over loopback it beat sendfile only ' +
      'while the socket was paced by bbr (measure with the fetch bench).',
  },
  {
    name: 'fetch.send.immediate',
    type: 'boolean',
    default: true,
    doc:
      'Sluice: a Fetch response with at least 16 KiB of file data, on a connection with nothing ' +
      'else queued, starts going out at once from the network thread: its header and up to 256 ' +
      'KiB of its file slices with non-blocking sendmsg and sendfile (zero-copy, no thread-pool ' +
      'hop); the rest as before. Only with fetch.send.method sendfile and the native addon. false: ' +
      'such responses are copied (below 256 KiB) or sent on the thread pool.',
  },
  {
    name: 'fetch.read.ahead',
    type: 'boolean',
    default: true,
    doc:
      'Sluice: for a consumer or follower behind the log (a read below the published tail at ' +
      'least half full), the read its next Fetch will want is asked of the partition owner at ' +
      'once and kept for that connection (at most 64 per connection and 4,096 per broker), so ' +
      'the next request starts without the owner round trip. false: every such read waits for ' +
      'its own round trip.',
  },
  {
    name: 'socket.send.buffer.bytes',
    type: 'int',
    default: -1,
    min: -1,
    max: 64 * MIB,
    doc:
      'SO_SNDBUF of client connections; -1 or 0: the kernel autotunes it (net.ipv4.tcp_wmem), ' +
      "Sluice's default (Kafka's is 102400).",
  },
  {
    name: 'socket.receive.buffer.bytes',
    type: 'int',
    default: -1,
    min: -1,
    max: 64 * MIB,
    doc:
      'SO_RCVBUF of client connections; -1 or 0: the kernel autotunes it (net.ipv4.tcp_rmem), ' +
      "Sluice's default (Kafka's is 102400).",
  },
  {
    name: 'socket.loopback.congestion.control',
    type: 'string',
    default: 'reno',
    doc:
      'Sluice: TCP congestion control (Linux, with the native addon) of client connections from ' +
      "a loopback address; empty keeps the system's (net.ipv4.tcp_congestion_control). A pacing " +
      'one such as bbr slowed large fetches over loopback by more than half (README, Benchmarks). ' +
      'Unprivileged, only names in net.ipv4.tcp_allowed_congestion_control can be set; a failure ' +
      'is logged once and the connection keeps the default.',
  },
  {
    name: 'socket.request.max.bytes',
    type: 'int',
    default: 100 * MIB,
    min: 1024,
    doc: 'Largest request frame; a larger size prefix closes the connection.',
  },
  {
    name: 'max.connections',
    type: 'int',
    default: 10000,
    min: 1,
    doc: 'Connections accepted at once; more are refused.',
  },
  {
    name: 'queued.max.requests.per.connection',
    type: 'int',
    default: 100,
    min: 1,
    doc: 'Sluice: requests in flight on one connection before it stops being read.',
  },
  {
    name: 'connections.max.idle.ms',
    type: 'long',
    default: 600000,
    min: 1,
    doc: 'Close connections idle for longer than this.',
  },
  {
    name: 'log.segment.bytes',
    type: 'int',
    default: GIB,
    min: 1024,
    max: INT32_MAX,
    topicKey: 'segment.bytes',
    doc: 'Default segment.bytes.',
  },
  {
    name: 'log.roll.ms',
    type: 'long',
    default: 7 * DAY_MS,
    min: 1,
    topicKey: 'segment.ms',
    doc: 'Default segment.ms.',
  },
  {
    name: 'log.retention.ms',
    type: 'long',
    default: 7 * DAY_MS,
    min: -1,
    topicKey: 'retention.ms',
    doc: 'Default retention.ms.',
  },
  {
    name: 'log.retention.bytes',
    type: 'long',
    default: -1,
    min: -1,
    topicKey: 'retention.bytes',
    doc: 'Default retention.bytes.',
  },
  {
    name: 'log.retention.check.interval.ms',
    type: 'long',
    default: 300000,
    min: 1,
    doc: 'How often retention runs.',
  },
  {
    name: 'log.index.interval.bytes',
    type: 'int',
    default: 4096,
    min: 0,
    topicKey: 'index.interval.bytes',
    doc: 'Default index.interval.bytes.',
  },
  {
    name: 'log.index.size.max.bytes',
    type: 'int',
    default: 10 * MIB,
    min: 4096,
    topicKey: 'segment.index.bytes',
    doc: 'Default segment.index.bytes.',
  },
  {
    name: 'log.cleanup.policy',
    type: 'string',
    default: 'delete',
    oneOf: CLEANUP_POLICIES,
    topicKey: 'cleanup.policy',
    doc: 'Default cleanup.policy.',
  },
  {
    name: 'log.cleaner.delete.retention.ms',
    type: 'long',
    default: 86_400_000,
    min: 0,
    topicKey: 'delete.retention.ms',
    doc: 'Default delete.retention.ms.',
  },
  {
    name: 'message.max.bytes',
    type: 'int',
    default: 1048588,
    min: 0,
    topicKey: 'max.message.bytes',
    doc: 'Default max.message.bytes.',
  },
  {
    name: 'log.message.timestamp.type',
    type: 'string',
    default: 'CreateTime',
    oneOf: TIMESTAMP_TYPES,
    topicKey: 'message.timestamp.type',
    doc: 'Default message.timestamp.type.',
  },
  {
    name: 'log.flush.policy',
    type: 'string',
    default: 'never',
    oneOf: FLUSH_POLICIES,
    topicKey: 'flush.policy',
    doc: 'Sluice: default flush.policy.',
  },
  {
    name: 'log.flush.interval.ms',
    type: 'long',
    default: 1000,
    min: 1,
    topicKey: 'flush.ms',
    doc: 'Default flush.ms.',
  },
  {
    name: 'log.flush.interval.messages',
    type: 'long',
    default: -1,
    min: -1,
    topicKey: 'flush.messages',
    doc: 'Default flush.messages.',
  },
  {
    name: 'min.insync.replicas',
    type: 'int',
    default: 1,
    min: 1,
    topicKey: 'min.insync.replicas',
    doc: 'Default min.insync.replicas.',
  },
  // ---- cluster mode (replication side) ----
  {
    name: 'replica.lag.time.max.ms',
    type: 'long',
    default: 30_000,
    min: 1,
    doc: 'A follower not caught up with the leader for this long leaves the ISR.',
  },
  {
    name: 'replica.fetch.wait.max.ms',
    type: 'int',
    default: 500,
    min: 0,
    doc: "Longest wait of a follower's fetch (long poll) when the leader has nothing new.",
  },
  {
    name: 'replica.fetch.min.bytes',
    type: 'int',
    default: 1,
    min: 1,
    max: 1024 * MIB,
    doc: "Bytes a follower's fetch waits for (at most replica.fetch.wait.max.ms) before the leader answers; more bytes per round, but an acks=all produce may wait out the long poll.",
  },
  {
    name: 'replica.fetch.max.bytes',
    type: 'int',
    default: 1024 * 1024,
    min: 1024,
    doc: 'Bytes a follower asks per partition and fetch (at least one batch is always sent).',
  },
  {
    name: 'replica.fetch.response.max.bytes',
    type: 'int',
    default: 10 * 1024 * 1024,
    min: 1024,
    doc: "Bytes a follower's fetch response may hold.",
  },
  {
    name: 'replica.fetch.backoff.ms',
    type: 'int',
    default: 100,
    min: 0,
    doc: "Wait of a follower's fetcher after an error (Kafka's default is 1000; shorter fails over faster).",
  },
  {
    name: 'group.initial.rebalance.delay.ms',
    type: 'int',
    default: 3000,
    min: 0,
    doc: 'Delay of the first rebalance of an empty group (0 in the embedded default).',
  },
  {
    name: 'group.min.session.timeout.ms',
    type: 'int',
    default: 6000,
    min: 0,
    doc: 'Smallest session timeout a group member may ask for.',
  },
  {
    name: 'group.max.session.timeout.ms',
    type: 'int',
    default: 1800000,
    min: 0,
    doc: 'Largest session timeout a group member may ask for.',
  },
  {
    name: 'group.max.size',
    type: 'int',
    default: 1000,
    min: 1,
    doc:
      'Most members of one consumer group; a join past it gets GROUP_MAX_SIZE_REACHED, and a ' +
      'reloaded group above it rebalances down to it (Kafka: unlimited by default).',
  },
  {
    name: 'offsets.topic.num.partitions',
    type: 'int',
    default: 50,
    min: 1,
    doc: 'Partitions of the internal __consumer_offsets topic.',
  },
  {
    name: 'offsets.retention.minutes',
    type: 'int',
    default: 10080,
    min: 1,
    doc: 'Committed offsets of an empty group expire after this.',
  },
  // ---- cluster mode (controller side) ----
  {
    name: 'etcd.endpoints',
    type: 'string',
    default: '',
    doc: 'Sluice: comma-separated etcd URLs; empty runs a single broker without etcd.',
  },
  {
    name: 'etcd.keepalive.interval.ms',
    type: 'int',
    default: 6000,
    min: 100,
    max: 3_600_000,
    doc:
      'Sluice: gRPC keepalive ping towards etcd while its streams are open; etcd answers pings ' +
      'closer together than its --grpc-keepalive-min-time (5 s by default) with GOAWAY.',
  },
  {
    name: 'etcd.keepalive.timeout.ms',
    type: 'int',
    default: 3000,
    min: 100,
    max: 600_000,
    doc:
      'Sluice: a connection to etcd whose keepalive ping is not answered this fast is dropped ' +
      'and dialled again (a peer that vanished without a reset).',
  },
  {
    name: 'cluster.name',
    type: 'string',
    default: 'sluice',
    doc: 'Sluice: the cluster this broker joins (etcd keys live under /sluice/<cluster.name>/).',
  },
  { name: 'broker.rack', type: 'string', default: '', doc: 'Rack of this broker (Metadata).' },
  {
    name: 'broker.session.timeout.ms',
    type: 'int',
    default: 1000,
    min: 1000,
    doc:
      'A broker whose etcd lease is not renewed for this long (whole seconds, rounded up) is ' +
      'dead. etcd raises the TTL to its minimum, 1.5 election timeouts: run etcd with ' +
      '--election-timeout 500 or less for the 1 s default.',
  },
  {
    name: 'unclean.leader.election.enable',
    type: 'boolean',
    default: false,
    doc: 'Elect a replica outside the ISR when no ISR member is alive (may lose records).',
  },
  {
    name: 'auto.leader.rebalance.enable',
    type: 'boolean',
    default: true,
    doc: 'The controller moves leadership back to preferred replicas that are in the ISR.',
  },
  {
    name: 'leader.imbalance.check.interval.seconds',
    type: 'int',
    default: 300,
    min: 1,
    doc: 'How often the controller checks for preferred leaders to restore.',
  },
  {
    name: 'controlled.shutdown.enable',
    type: 'boolean',
    default: true,
    doc: 'A stopping broker first has the controller move its leaderships away.',
  },
  {
    name: 'controlled.shutdown.timeout.ms',
    type: 'int',
    default: 5000,
    min: 0,
    doc: 'Sluice: how long a stopping broker waits for its leaderships to move.',
  },
  {
    name: 'offsets.topic.replication.factor',
    type: 'int',
    default: 3,
    min: 1,
    doc: 'Replication factor of __consumer_offsets (capped at the live brokers when created).',
  },
];

function indexByName(defs: readonly ConfigDef[]): ReadonlyMap<string, ConfigDef> {
  return new Map(defs.map((d) => [d.name, d]));
}

export const TOPIC_CONFIG_BY_NAME = indexByName(TOPIC_CONFIGS);
export const BROKER_CONFIG_BY_NAME = indexByName(BROKER_CONFIGS);

/** topic key -> the broker key that supplies its default. */
export const BROKER_SYNONYM_OF_TOPIC_KEY: ReadonlyMap<string, string> = new Map(
  BROKER_CONFIGS.flatMap((d) => (d.topicKey ? [[d.topicKey, d.name] as const] : [])),
);

export function configTypeCode(def: ConfigDef): number {
  if (def.type === 'boolean') return ConfigType.BOOLEAN;
  if (def.type === 'string') return ConfigType.STRING;
  return def.type === 'int' ? ConfigType.INT : ConfigType.LONG;
}
