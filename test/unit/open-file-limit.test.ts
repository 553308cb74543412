import { describe, expect, it } from 'vitest';
import { partitionsMaxOf } from '../../src/broker/broker-core.js';
import { openFileLimit, sharedFileBudget } from '../../src/util/open-file-limit.js';

const limits = (soft: string): string =>
  [
    'Limit                     Soft Limit           Hard Limit           Units     ',
    'Max processes             95000                95000                processes ',
    `Max open files            ${soft.padEnd(20)} 1048576              files     `,
    'Max locked memory         8388608              8388608              bytes     ',
  ].join('\n');

describe('openFileLimit', () => {
  it('reads the soft limit on open files', () => {
    expect(openFileLimit(limits('20000'))).toBe(20000);
    expect(openFileLimit(limits('unlimited'))).toBeNull();
    expect(openFileLimit('no such line')).toBeNull();
  });

  it('reads this process on Linux', () => {
    if (process.platform !== 'linux') return;
    expect(openFileLimit()).toBeGreaterThan(0);
  });
});

describe('partitions and connections a broker may hold', () => {
  it('keeps a reserve of descriptors: a quarter of the limit, at most 1024', () => {
    expect(sharedFileBudget(20000)).toBe(18976);
    expect(sharedFileBudget(1024)).toBe(768);
    expect(sharedFileBudget(null)).toBeNull();
  });

  it('takes max.partitions when set, else the file limit or the table size, whichever is less', () => {
    expect(partitionsMaxOf(100, 65536, 50)).toEqual({ count: 100, why: 'max.partitions' });
    expect(partitionsMaxOf(100000, 65536, null).count).toBe(65536);
    const byFiles = partitionsMaxOf(-1, 65536, 20000);
    expect(byFiles.count).toBe(18976);
    expect(byFiles.why).toMatch(/open-file limit 20000.*ulimit -n.*max\.partitions/);
    expect(partitionsMaxOf(-1, 65536, 1048576)).toEqual({
      count: 65536,
      why: 'the partition table size',
    });
    expect(partitionsMaxOf(-1, 65536, null).count).toBe(65536);
  });
});
