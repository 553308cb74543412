/**
 * Parsing, validation and resolution of broker and topic configuration.
 *
 * Values arrive as strings (CLI `--set k=v`, config files, CreateTopics and AlterConfigs requests)
 * or as typed values (the embedded `startBroker({...})` options). Every value is checked against
 * its definition in `definitions.ts`; an unknown key or a bad value is a clear error naming both.
 *
 * `ConfigSet` objects are immutable once built and safe to share between threads as plain data.
 */

import {
  BROKER_CONFIG_BY_NAME,
  BROKER_SYNONYM_OF_TOPIC_KEY,
  type ConfigDef,
  ConfigSource,
  type ConfigValue,
  TOPIC_CONFIG_BY_NAME,
  TOPIC_CONFIGS,
} from './definitions.js';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Parses and validates one value for a definition. Throws ConfigError on a bad value. */
export function parseConfigValue(def: ConfigDef, raw: unknown): ConfigValue {
  if (def.type === 'boolean') return parseBoolean(def, raw);
  if (def.type === 'string') return parseString(def, raw);
  return parseInteger(def, raw);
}

function parseBoolean(def: ConfigDef, raw: unknown): boolean {
  if (typeof raw === 'boolean') return raw;
  const s = String(raw).trim().toLowerCase();
  if (s === 'true') return true;
  if (s === 'false') return false;
  throw new ConfigError(`${def.name}: expected true or false, got "${String(raw)}"`);
}

function parseString(def: ConfigDef & { type: 'string' }, raw: unknown): string {
  const s = String(raw);
  if (def.oneOf && !def.oneOf.includes(s)) {
    throw new ConfigError(`${def.name}: expected one of ${def.oneOf.join(', ')}, got "${s}"`);
  }
  return s;
}

function parseInteger(def: ConfigDef & { type: 'int' | 'long' }, raw: unknown): number {
  const s = typeof raw === 'number' ? String(raw) : String(raw).trim();
  if (!/^-?\d+$/.test(s)) throw new ConfigError(`${def.name}: expected an integer, got "${s}"`);
  const v = Number(s);
  if (!Number.isSafeInteger(v)) throw new ConfigError(`${def.name}: ${s} is out of range`);
  if (def.type === 'int' && (v > 2147483647 || v < -2147483648)) {
    throw new ConfigError(`${def.name}: ${s} does not fit an int32`);
  }
  if (def.min !== undefined && v < def.min) {
    throw new ConfigError(`${def.name}: ${v} is below the minimum ${def.min}`);
  }
  if (def.max !== undefined && v > def.max) {
    throw new ConfigError(`${def.name}: ${v} is above the maximum ${def.max}`);
  }
  return v;
}

/** A validated set of explicitly given values over a table of definitions. Immutable. */
export class ConfigSet {
  private constructor(
    private readonly defs: ReadonlyMap<string, ConfigDef>,
    /** Only the explicitly set values; defaults come from `defs`. */
    readonly explicit: ReadonlyMap<string, ConfigValue>,
  ) {}

  static build(
    defs: ReadonlyMap<string, ConfigDef>,
    given: Readonly<Record<string, unknown>>,
    kind: 'broker' | 'topic',
  ): ConfigSet {
    const explicit = new Map<string, ConfigValue>();
    for (const [name, raw] of Object.entries(given)) {
      if (raw === undefined) continue;
      const def = defs.get(name);
      if (!def) throw new ConfigError(`unknown ${kind} config "${name}"`);
      explicit.set(name, parseConfigValue(def, raw));
    }
    return new ConfigSet(defs, explicit);
  }

  has(name: string): boolean {
    return this.explicit.has(name);
  }

  get(name: string): ConfigValue {
    const v = this.explicit.get(name);
    if (v !== undefined) return v;
    const def = this.defs.get(name);
    if (!def) throw new ConfigError(`unknown config "${name}"`);
    return def.default;
  }

  int(name: string): number {
    const v = this.get(name);
    if (typeof v !== 'number') throw new ConfigError(`${name} is not numeric`);
    return v;
  }

  str(name: string): string {
    const v = this.get(name);
    if (typeof v !== 'string') throw new ConfigError(`${name} is not a string`);
    return v;
  }

  bool(name: string): boolean {
    const v = this.get(name);
    if (typeof v !== 'boolean') throw new ConfigError(`${name} is not a boolean`);
    return v;
  }

  /** A new set with `changes` applied (value null deletes an explicit value). */
  with(changes: Readonly<Record<string, unknown>>, kind: 'broker' | 'topic'): ConfigSet {
    const merged: Record<string, unknown> = Object.fromEntries(this.explicit);
    for (const [k, v] of Object.entries(changes)) {
      if (v === null) delete merged[k];
      else merged[k] = v;
    }
    return ConfigSet.build(this.defs, merged, kind);
  }

  toRecord(): Record<string, ConfigValue> {
    return Object.fromEntries(this.explicit);
  }
}

export function brokerConfig(given: Readonly<Record<string, unknown>> = {}): ConfigSet {
  return ConfigSet.build(BROKER_CONFIG_BY_NAME, given, 'broker');
}

export function topicOverrides(given: Readonly<Record<string, unknown>> = {}): ConfigSet {
  return ConfigSet.build(TOPIC_CONFIG_BY_NAME, given, 'topic');
}

/** One topic config as DescribeConfigs reports it. */
export interface DescribedConfig {
  name: string;
  value: string;
  source: number;
  isDefault: boolean;
  synonyms: { name: string; value: string; source: number }[];
  def: ConfigDef;
}

/** The value a topic actually uses for `name`: override, else broker setting, else default. */
export function effectiveTopicValue(
  broker: ConfigSet,
  topic: ConfigSet,
  name: string,
): ConfigValue {
  if (topic.has(name)) return topic.get(name);
  const synonym = BROKER_SYNONYM_OF_TOPIC_KEY.get(name);
  if (synonym !== undefined) return broker.get(synonym);
  return topic.get(name);
}

/** Every topic config with its effective value, source and synonyms (DescribeConfigs). */
export function describeTopicConfigs(broker: ConfigSet, topic: ConfigSet): DescribedConfig[] {
  return TOPIC_CONFIGS.map((def) => {
    const synonyms: DescribedConfig['synonyms'] = [];
    if (topic.has(def.name)) {
      synonyms.push({
        name: def.name,
        value: String(topic.get(def.name)),
        source: ConfigSource.TOPIC_CONFIG,
      });
    }
    const brokerKey = BROKER_SYNONYM_OF_TOPIC_KEY.get(def.name);
    if (brokerKey !== undefined && broker.has(brokerKey)) {
      synonyms.push({
        name: brokerKey,
        value: String(broker.get(brokerKey)),
        source: ConfigSource.STATIC_BROKER_CONFIG,
      });
    }
    synonyms.push({
      name: brokerKey ?? def.name,
      value: String(def.default),
      source: ConfigSource.DEFAULT_CONFIG,
    });
    const first = synonyms[0];
    if (!first) throw new Error('unreachable: synonyms always has the default');
    return {
      name: def.name,
      value: first.value,
      source: first.source,
      isDefault: first.source === ConfigSource.DEFAULT_CONFIG,
      synonyms,
      def,
    };
  });
}
