import { describe, expect, it } from 'vitest';
import { jsonBytes, rpcDecode, rpcEncodeInto, rpcSize } from '../../src/broker/owner/rpc.js';

describe('rpc message layout', () => {
  it('places the tail at the alignment it has in its own memory (mod 8), and decodes intact', () => {
    const backing = Buffer.alloc(4096);
    for (let i = 0; i < backing.length; i++) backing[i] = (i * 7) & 0xff;
    const json = { slot: 3, acks: -1, apiVersion: 9, name: 'ünïcode' };
    for (let align = 0; align < 16; align++) {
      const tail = backing.subarray(align, align + 1000);
      const body = jsonBytes(json, tail.byteOffset);
      const message = new Uint8Array(rpcSize(body, tail.length));
      rpcEncodeInto(message, 42, 0, body, [tail]);
      const decoded = rpcDecode<typeof json>(message);
      expect(decoded.json).toEqual(json);
      expect(decoded.reqId).toBe(42);
      expect(Buffer.from(decoded.tail).equals(tail)).toBe(true);
      // A ring payload starts 8-aligned, so this is the tail's alignment in the ring.
      expect(decoded.tail.byteOffset % 8).toBe(tail.byteOffset % 8);
      expect(body.length - Buffer.byteLength(JSON.stringify(json))).toBeLessThan(8);
    }
  });
});
