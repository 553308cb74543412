import { describe, expect, it } from 'vitest';
import {
  brokerConfig,
  ConfigError,
  describeTopicConfigs,
  effectiveTopicValue,
  topicOverrides,
} from '../../src/config/config.js';
import { ConfigSource, TOPIC_CONFIGS } from '../../src/config/definitions.js';

describe('config', () => {
  it('parses strings to typed values and applies defaults', () => {
    const c = brokerConfig({ 'num.partitions': '3', 'auto.create.topics.enable': 'false' });
    expect(c.int('num.partitions')).toBe(3);
    expect(c.bool('auto.create.topics.enable')).toBe(false);
    expect(c.int('log.segment.bytes')).toBe(1024 ** 3);
  });

  it('rejects unknown keys and bad values with the key in the message', () => {
    expect(() => brokerConfig({ 'no.such.key': '1' })).toThrow(/no\.such\.key/);
    expect(() => brokerConfig({ 'num.partitions': 'many' })).toThrow(ConfigError);
    expect(() => brokerConfig({ 'num.partitions': '0' })).toThrow(/minimum 1/);
    expect(() => topicOverrides({ 'flush.policy': 'sometimes' })).toThrow(/always, interval/);
    expect(() => topicOverrides({ 'segment.bytes': '99999999999' })).toThrow(/int32/);
  });

  it('resolves a topic value: override, then broker synonym, then default', () => {
    const broker = brokerConfig({ 'log.retention.ms': '1000' });
    const topic = topicOverrides({ 'segment.bytes': 4096 });
    expect(effectiveTopicValue(broker, topic, 'segment.bytes')).toBe(4096);
    expect(effectiveTopicValue(broker, topic, 'retention.ms')).toBe(1000);
    expect(effectiveTopicValue(broker, topic, 'cleanup.policy')).toBe('delete');
  });

  it('describes every topic config with its source and synonyms', () => {
    const broker = brokerConfig({ 'log.retention.ms': '1000' });
    const topic = topicOverrides({ 'segment.bytes': '4096' });
    const described = describeTopicConfigs(broker, topic);
    expect(described.map((d) => d.name)).toEqual(TOPIC_CONFIGS.map((d) => d.name));
    const seg = described.find((d) => d.name === 'segment.bytes');
    expect(seg).toMatchObject({ value: '4096', source: ConfigSource.TOPIC_CONFIG });
    expect(seg?.synonyms.map((s) => s.name)).toEqual(['segment.bytes', 'log.segment.bytes']);
    const ret = described.find((d) => d.name === 'retention.ms');
    expect(ret).toMatchObject({ value: '1000', source: ConfigSource.STATIC_BROKER_CONFIG });
    const cp = described.find((d) => d.name === 'cleanup.policy');
    expect(cp).toMatchObject({ isDefault: true, source: ConfigSource.DEFAULT_CONFIG });
  });

  it('with() applies and deletes overrides', () => {
    const t = topicOverrides({ 'retention.ms': '5' }).with(
      { 'retention.ms': null, 'segment.ms': '10' },
      'topic',
    );
    expect(t.has('retention.ms')).toBe(false);
    expect(t.int('segment.ms')).toBe(10);
  });
});
