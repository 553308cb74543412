/**
 * The pure pieces of the client commands: the consume --format compiler (tokens, escapes, the
 * trailing newline, errors), produce's line splitter (lines across chunk boundaries, CRLF, a last
 * line without newline, bytes kept as they are) and header lists, groups' topic:partitions
 * syntax, and the shared flag parsers.
 */

import { Readable } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { intFlag, table, timeFlag } from '../../src/cli/common.js';
import { compileFormat, nextOffsets } from '../../src/cli/consume.js';
import { parseTopicPartitions } from '../../src/cli/groups.js';
import { lines, parseHeaders } from '../../src/cli/produce.js';
import type { ConsumerRecord } from '../../src/client/consumer.js';

const record: ConsumerRecord<Buffer | null, Buffer | null> = {
  topic: 'orders',
  partition: 3,
  offset: 42,
  key: Buffer.from('k1'),
  value: Buffer.from('héllo'),
  headers: [
    { key: 'a', value: Buffer.from('1') },
    { key: 'b', value: null },
  ],
  timestamp: 1_700_000_000_123,
};

async function collect(chunks: (string | Buffer)[]): Promise<string[]> {
  const out: string[] = [];
  for await (const l of lines(Readable.from(chunks))) out.push(l.toString('latin1'));
  return out;
}

describe('consume --format', () => {
  it('expands every token and escape, and ends each record with one newline', () => {
    expect(compileFormat('%t %p %o %k %v %T %h')(record)).toBe(
      'orders 3 42 k1 héllo 1700000000123 a=1,b=\n',
    );
    expect(compileFormat('%v')(record)).toBe('héllo\n');
    expect(compileFormat('[%k]\\t100%%\\\\\\n')(record)).toBe('[k1]\t100%\\\n');
    expect(compileFormat('%o\\r\\n')(record)).toBe('42\r\n');
    expect(compileFormat('')(record)).toBe('\n');
    const nulls = { ...record, key: null, value: null, headers: [] };
    expect(compileFormat('<%k|%v|%h>')(nulls)).toBe('<||>\n');
  });

  it('rejects unknown tokens, unknown escapes and a dangling % or backslash', () => {
    expect(() => compileFormat('%x')).toThrow(/unknown --format token '%x'/);
    expect(() => compileFormat('\\q')).toThrow(/unknown --format escape/);
    expect(() => compileFormat('%v%')).toThrow(/lone '%'/);
    expect(() => compileFormat('%v\\')).toThrow(/lone '\\'/);
    expect(() => compileFormat('x'.repeat(5_000))).toThrow(/longer than/);
  });

  it('prints literal text unchanged when it has no tokens or escapes', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 50 }), (text) => {
        fc.pre(!text.includes('%') && !text.includes('\\'));
        const out = compileFormat(text)(record);
        expect(out).toBe(text.endsWith('\n') ? text : `${text}\n`);
      }),
    );
  });
});

describe('consume --group commits', () => {
  it('commits the last printed offset + 1 per partition', () => {
    const at = (topic: string, partition: number, offset: number) => ({
      ...record,
      topic,
      partition,
      offset,
    });
    expect(
      nextOffsets([at('a', 0, 5), at('a', 1, 2), at('a', 0, 6), at('b', 0, 9), at('a', 1, 3)]),
    ).toEqual([
      { topic: 'a', partition: 0, offset: 7 },
      { topic: 'a', partition: 1, offset: 4 },
      { topic: 'b', partition: 0, offset: 10 },
    ]);
    expect(nextOffsets([])).toEqual([]);
  });
});

describe('produce input', () => {
  it('splits lines across chunk boundaries, drops CR before LF, keeps a last line without LF', async () => {
    expect(await collect(['a', 'b\nc', 'd\r', '\n\ne\r\nlast'])).toEqual([
      'ab',
      'cd',
      '',
      'e',
      'last',
    ]);
    expect(await collect(['x\n'])).toEqual(['x']);
    expect(await collect([])).toEqual([]);
    expect(await collect([Buffer.from([0xff, 0x00, 0x0a, 0x80])])).toEqual(['\xff\x00', '\x80']);
  });

  it('gives the same lines whatever the chunking', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.constantFrom('a', 'b', '\n', '\r'), { maxLength: 40 }),
        fc.array(fc.integer({ min: 1, max: 7 }), { minLength: 1, maxLength: 10 }),
        async (chars, sizes) => {
          const text = chars.join('');
          const chunks: string[] = [];
          for (let at = 0, i = 0; at < text.length; i++) {
            const n = sizes[i % sizes.length] as number;
            chunks.push(text.slice(at, at + n));
            at += n;
          }
          const expected = text === '' ? [] : text.split('\n').map((l) => l.replace(/\r$/, ''));
          if (text.endsWith('\n')) expected.pop();
          expect(await collect(chunks)).toEqual(expected);
        },
      ),
    );
  });

  it('parses header lists', () => {
    expect(parseHeaders(['a=1,b=', 'c=x=y'])).toEqual([
      { key: 'a', value: Buffer.from('1') },
      { key: 'b', value: Buffer.from('') },
      { key: 'c', value: Buffer.from('x=y') },
    ]);
    expect(parseHeaders([])).toEqual([]);
    expect(() => parseHeaders(['=v'])).toThrow(/bad header '=v'/);
    expect(() => parseHeaders(['novalue'])).toThrow(/bad header/);
  });
});

describe('flag parsers', () => {
  it('parse topic:partitions, integers, times and tables', () => {
    expect(parseTopicPartitions('t')).toEqual({ topic: 't' });
    expect(parseTopicPartitions('t:0,2')).toEqual({ topic: 't', partitions: [0, 2] });
    expect(() => parseTopicPartitions('t:a')).toThrow(/bad --topic/);
    expect(() => parseTopicPartitions(':1')).toThrow(/bad --topic/);
    const parse = intFlag(1, 10);
    expect(parse('7')).toBe(7);
    for (const bad of ['0', '11', '1.5', 'x', '', '1e1']) expect(() => parse(bad)).toThrow();
    expect(timeFlag('2024-03-01T00:00:00Z')).toBe(Date.parse('2024-03-01T00:00:00Z'));
    expect(timeFlag('1700000000000')).toBe(1_700_000_000_000);
    expect(() => timeFlag('later')).toThrow(/ISO-8601/);
    expect(table(['A', 'BB'], [['xyz', '1']])).toBe('A    BB\nxyz  1\n');
  });
});
