import { describe, expect, it } from 'vitest';
import {
  BINARY_HEADER_CODECS,
  followerAppendReqCodec,
  type HeaderCodec,
  HeaderCodecId,
  produceReqCodec,
  produceResCodec,
  readReqCodec,
  readResCodec,
  releaseReqCodec,
  replicaPositionResCodec,
  setHighWatermarkReqCodec,
} from '../../src/broker/owner/binary-headers.js';
import type {
  FollowerAppendReq,
  ProduceRes,
  ReadRes,
  ReplicaPositionRes,
} from '../../src/broker/owner/messages.js';
import {
  HeaderScratch,
  jsonBytes,
  Op,
  REQUEST_HEADER_CODECS,
  rpcDecode,
  rpcEncodeInto,
  rpcSize,
} from '../../src/broker/owner/rpc.js';
import { RpcEndpoint } from '../../src/broker/owner/rpc-endpoint.js';
import { createChannel, openChannel } from '../../src/threads/channel.js';

const BIG_OFFSET = 2 ** 53 - 1;

/** Encodes `value` with `codec` into a whole message with `tail`, as an endpoint does. */
function message<T>(codec: HeaderCodec<T>, value: T, tail: Uint8Array): Uint8Array {
  const header = new HeaderScratch().encode(codec, value, tail.byteOffset);
  const out = new Uint8Array(rpcSize(header, tail.length));
  rpcEncodeInto(out, 7, codec.id, header, [tail]);
  return out;
}

function roundTrip<T>(codec: HeaderCodec<T>, value: T): T {
  const backing = Buffer.alloc(64);
  for (let align = 0; align < 8; align++) {
    const tail = backing.subarray(align, align + 40).fill(align + 1);
    const decoded = rpcDecode<T>(message(codec, value, tail));
    expect(decoded.reqId).toBe(7);
    expect(Buffer.from(decoded.tail).equals(tail)).toBe(true);
    // The header's padding keeps the tail at its own alignment (ring payloads start 8-aligned).
    expect(decoded.tail.byteOffset % 8).toBe(tail.byteOffset % 8);
    expect(decoded.json).toStrictEqual(value);
  }
  return rpcDecode<T>(message(codec, value, new Uint8Array(0))).json;
}

describe('binary owner RPC headers', () => {
  it('carry produce requests and answers field for field, optional fields kept absent', () => {
    roundTrip(produceReqCodec, { slot: 65_535, acks: -1, apiVersion: 11 });
    const ok: ProduceRes = {
      errorCode: 0,
      errorMessage: null,
      baseOffset: BIG_OFFSET - 10,
      lastOffset: BIG_OFFSET,
      logAppendTimeMs: 1_790_000_000_123,
      logStartOffset: 0,
      recordErrors: [],
    };
    roundTrip(produceResCodec, ok);
    const failed: ProduceRes = {
      errorCode: 87,
      errorMessage: 'bad record: ünïcode ✓',
      baseOffset: -1,
      logAppendTimeMs: -1,
      logStartOffset: -1,
      recordErrors: [
        { batchIndex: 0, message: '' },
        { batchIndex: 3, message: 'timestamp out of range' },
      ],
    };
    expect('lastOffset' in roundTrip(produceResCodec, failed)).toBe(false);
  });

  it('carry fetch reads, their slices and releases', () => {
    roundTrip(readReqCodec, { slot: 1, offset: 0, maxBytes: 2 ** 31 - 1, maxOffsetExclusive: 9 });
    roundTrip(readReqCodec, {
      slot: 2,
      offset: BIG_OFFSET,
      maxBytes: 1,
      maxOffsetExclusive: BIG_OFFSET,
      countRecords: true,
    });
    const slices: ReadRes['slices'] = [];
    for (let i = 0; i < 300; i++) slices.push([100 + i, 2 ** 40 + i, 1 + i]);
    const res: ReadRes = {
      errorCode: 0,
      slices,
      bytes: 2 ** 33,
      leaseId: 2 ** 40,
      highWatermark: 5,
      logStartOffset: 1,
      logEndOffset: 6,
      nextOffset: 2 ** 40 + 3,
      records: 12,
    };
    roundTrip(readResCodec, res);
    const empty: ReadRes = { ...res, errorCode: 1, slices: [], leaseId: 0 };
    delete empty.records;
    expect('records' in roundTrip(readResCodec, empty)).toBe(false);
    // Lease ids count up for the life of a worker: past 2^31 they must still match.
    expect(roundTrip(releaseReqCodec, { leaseId: 2 ** 31 + 5 }).leaseId).toBe(2 ** 31 + 5);
  });

  it('carry follower appends, replica positions and high watermarks', () => {
    const inTail: FollowerAppendReq = {
      slot: 4,
      leaderEpoch: 2 ** 31 - 1,
      leaderHighWatermark: BIG_OFFSET,
      leaderLogStartOffset: 0,
    };
    expect('arena' in roundTrip(followerAppendReqCodec, inTail)).toBe(false);
    roundTrip(followerAppendReqCodec, { ...inTail, arena: { offset: 3 * 2 ** 30, length: 10 } });
    const position: ReplicaPositionRes = {
      errorCode: 0,
      logStartOffset: 0,
      logEndOffset: BIG_OFFSET,
      highWatermark: 17,
      latestEpoch: -1,
    };
    expect('error' in roundTrip(replicaPositionResCodec, position)).toBe(false);
    roundTrip(replicaPositionResCodec, { ...position, errorCode: 74, error: 'fenced' });
    roundTrip(replicaPositionResCodec, { ...position, errorCode: 74, error: '' });
    roundTrip(setHighWatermarkReqCodec, { slot: 0, highWatermark: BIG_OFFSET });
  });

  it('refuse to write a 32-bit field that does not fit instead of wrapping it', () => {
    const scratch = new HeaderScratch();
    const read = { slot: 1, offset: 0, maxBytes: 2 ** 31, maxOffsetExclusive: 1 };
    expect(() => scratch.encode(readReqCodec, read)).toThrow('2147483648 is not a 32-bit integer');
    const produce = { slot: 1.5, acks: 1, apiVersion: 9 };
    expect(() => scratch.encode(produceReqCodec, produce)).toThrow('1.5 is not a 32-bit integer');
  });

  it('cut an oversized error message instead of growing the header without bound', () => {
    const res: ProduceRes = {
      errorCode: 2,
      errorMessage: 'x'.repeat(1_000_000),
      baseOffset: -1,
      logAppendTimeMs: -1,
      logStartOffset: -1,
      recordErrors: [],
    };
    const decoded = rpcDecode<ProduceRes>(message(produceResCodec, res, new Uint8Array(0))).json;
    expect(decoded).toStrictEqual({ ...res, errorMessage: 'x'.repeat(64 * 1024) });
  });

  it('refuse a header shorter than its fields, an unknown codec and a bad length, clearly', () => {
    const whole = message(readResCodec, emptyRead(), new Uint8Array(0));
    // Claim a header 8 bytes shorter than written: the reader runs past its end.
    const view = new DataView(whole.buffer);
    const word = view.getUint32(4);
    view.setUint32(4, word - 8);
    expect(() => rpcDecode(whole)).toThrow(/binary header ends at/);
    const unknown = message(releaseReqCodec, { leaseId: 1 }, new Uint8Array(0));
    new DataView(unknown.buffer).setUint8(4, 200);
    expect(() => rpcDecode(unknown)).toThrow('unknown header codec 200');
    const tooLong = message(releaseReqCodec, { leaseId: 1 }, new Uint8Array(0));
    new DataView(tooLong.buffer).setUint32(4, (HeaderCodecId.ReleaseReq << 24) | 1000);
    expect(() => rpcDecode(tooLong)).toThrow('bad header length 1000');
  });

  it('leave JSON headers readable beside them, and every id has one codec', () => {
    const json = { slot: 1, settings: { segmentBytes: 1 } };
    const body = jsonBytes(json);
    const out = new Uint8Array(rpcSize(body, 0));
    rpcEncodeInto(out, 3, HeaderCodecId.Json, body, []);
    expect(rpcDecode(out).json).toEqual(json);
    for (const [name, id] of Object.entries(HeaderCodecId)) {
      if (id === HeaderCodecId.Json) continue;
      expect(BINARY_HEADER_CODECS[id]?.id, name).toBe(id);
    }
  });

  it('go out binary from an endpoint for the hot operations, and answers too when asked', async () => {
    const { main, workerInit } = createChannel({ transport: 'ring', capacityBytes: 64 * 1024 });
    const seen: number[] = [];
    const peer = openChannel(workerInit);
    // Look at the envelope's codec id of every request before the endpoint decodes it.
    const drain = peer.drain.bind(peer);
    peer.drain = (cb, max) =>
      drain((payload, tag) => {
        seen.push(new DataView(payload.buffer, payload.byteOffset).getUint8(4));
        cb(payload, tag);
      }, max);
    const server: RpcEndpoint = new RpcEndpoint(peer, (op, msg) => {
      if (op === Op.Read) server.complete(msg.reqId, emptyRead(), [], readResCodec);
      else server.complete(msg.reqId, { op, json: msg.json });
    });
    const client = new RpcEndpoint(main, null);
    const read = { slot: 3, offset: 10, maxBytes: 100, maxOffsetExclusive: 20 };
    expect((await client.call(Op.Read, read)).json).toStrictEqual(emptyRead());
    const produce = { slot: 1, acks: 1, apiVersion: 9 };
    const tail = Buffer.from('batch bytes');
    const echoed = await client.call(Op.Produce, produce, [tail]);
    expect(echoed.json).toStrictEqual({ op: Op.Produce, json: produce });
    await client.call(Op.ListOffset, { slot: 1, timestamp: -1 });
    expect(seen).toEqual([HeaderCodecId.ReadReq, HeaderCodecId.ProduceReq, HeaderCodecId.Json]);
    expect(REQUEST_HEADER_CODECS[Op.ListOffset]).toBeUndefined();
    await Promise.all([server.close(), client.close()]);
  });
});

function emptyRead(): ReadRes {
  return {
    errorCode: 0,
    slices: [[12, 0, 100]],
    bytes: 100,
    leaseId: 9,
    highWatermark: 20,
    logStartOffset: 0,
    logEndOffset: 20,
    nextOffset: 20,
  };
}
