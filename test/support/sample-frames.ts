/**
 * Request frames (without the size prefix) for every API and version the generated codecs know,
 * built from the generated samples: the seeds of the fuzz tests. Test-only.
 */

import { encodeRequest } from '../../src/protocol/frame.js';
import { allCodecs } from '../../src/protocol/generated/index.js';
import { SAMPLES } from '../generated/index.js';

/** One frame per API and version; with `withNulls`, also the variant that sets nullables null. */
export function sampleRequestFrames(withNulls: boolean): Buffer[] {
  const out: Buffer[] = [];
  for (const c of allCodecs()) {
    const sample = SAMPLES.get(c.apiKey);
    if (!sample) continue;
    for (let v = c.minVersion; v <= c.maxVersion; v++) {
      for (const nulls of withNulls ? [false, true] : [false]) {
        out.push(encodeRequest(c.apiKey, v, 1, 'fuzz', sample.request(v, nulls)).subarray(4));
      }
    }
  }
  return out;
}
