/**
 * The transport ceiling for the produce benchmark: a Kafka-speaking sink in its own process that
 * reads produce request frames, decodes them with the generated codecs and answers each with a
 * success response, storing nothing. The same load generator (`produce-load.ts`) against it
 * measures what loopback TCP plus the protocol layer allow on this machine, so the broker's
 * ingest can be judged against the transport it cannot avoid, beside the raw pwrite limit.
 *
 *   node --import tsx bench/broker/produce-sink.ts     (prints `port N` once listening)
 *
 * Benchmark-only; single-threaded.
 */

import { createServer, type Socket } from 'node:net';
import { decodeRequest, encodeResponse } from '../../src/protocol/frame.js';
import {
  defaultPartitionProduceResponse,
  defaultProduceResponse,
  type ProduceRequest,
} from '../../src/protocol/generated/produce.js';

const PRODUCE_API_KEY = 0;
/** Largest frame the sink accepts (as the broker's default max frame). */
const FRAME_BYTES_MAX = 100 * 1024 * 1024;

/** Answers one produce frame: every partition succeeds at the next offset of its counter. */
function answer(frame: Buffer, nextOffset: { value: number }): Buffer[] {
  const req = decodeRequest(frame);
  if (!req.ok || req.header.apiKey !== PRODUCE_API_KEY)
    throw new Error(`produce sink: unexpected request (${req.ok ? req.header.apiKey : 'bad'})`);
  const body = req.body as ProduceRequest;
  const responses = body.topicData.map((t) => ({
    name: t.name,
    partitionResponses: t.partitionData.map((p) => ({
      ...defaultPartitionProduceResponse(),
      index: p.index,
      baseOffset: nextOffset.value++,
      logStartOffset: 0,
    })),
  }));
  const chunks = encodeResponse(PRODUCE_API_KEY, req.header.apiVersion, req.header.correlationId, {
    ...defaultProduceResponse(),
    responses,
  });
  return chunks.filter((c): c is Buffer => Buffer.isBuffer(c));
}

/** Splits frames off one connection as they arrive and answers each in order. */
function serve(socket: Socket): void {
  let chunks: Buffer[] = [];
  let have = 0;
  const nextOffset = { value: 0 };
  socket.on('data', (d: Buffer) => {
    chunks.push(d);
    have += d.length;
    socket.cork();
    for (;;) {
      if (have < 4) break;
      let all = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, have);
      chunks = [all];
      const size = all.readInt32BE(0);
      if (size < 0 || size > FRAME_BYTES_MAX) throw new Error(`produce sink: frame size ${size}`);
      if (have < 4 + size) break;
      for (const c of answer(all.subarray(4, 4 + size), nextOffset)) socket.write(c);
      all = all.subarray(4 + size);
      chunks = all.length > 0 ? [all] : [];
      have = all.length;
    }
    socket.uncork();
  });
  socket.on('error', () => socket.destroy());
}

const server = createServer({ noDelay: true }, serve);
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`port ${typeof address === 'object' && address ? address.port : 0}\n`);
});
