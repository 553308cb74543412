/**
 * Captures golden request frames from real Kafka clients (kafkajs, kcat/librdkafka,
 * @platformatic/kafka) talking to an embedded Sluice broker through a recording proxy, and writes
 * them to `test/fixtures/golden/` as hex with a manifest of what each client was asked to send.
 * `test/unit/golden-frames.test.ts` decodes them with the generated codecs.
 *
 *   node --import tsx scripts/capture-golden.ts
 *
 * Re-run after adding a client or an API; the fixtures are committed.
 */

import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel } from 'kafkajs';
import { startBroker } from '../src/broker/broker.js';
import { FrameTap, freePort } from '../test/support/frame-tap.js';
import { kcat } from '../test/support/kcat.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = join(root, 'test', 'fixtures', 'golden');

interface Capture {
  client: string;
  file: string;
  apiKey: number;
  apiVersion: number;
  direction: 'request' | 'response';
}

/** One tap per client, on the port the broker advertises, so every connection goes through it. */
async function withTap(
  brokerPort: number,
  tapPort: number,
  fn: (port: number) => Promise<void>,
): Promise<FrameTap> {
  const tap = new FrameTap('127.0.0.1', brokerPort);
  const port = await tap.listen(tapPort);
  try {
    await fn(port);
  } finally {
    await tap.close();
  }
  return tap;
}

function save(client: string, tap: FrameTap, captures: Capture[]): void {
  const seen = new Set<string>();
  const byCorrelation = new Map<string, { apiKey: number; apiVersion: number }>();
  for (const f of tap.frames) {
    if (f.direction !== 'request') continue;
    const apiKey = f.bytes.readInt16BE(0);
    const apiVersion = f.bytes.readInt16BE(2);
    byCorrelation.set(`${f.conn}/${f.bytes.readInt32BE(4)}`, { apiKey, apiVersion });
    const key = `${apiKey}-${apiVersion}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const file = `${client}-${apiKey}-v${apiVersion}.hex`;
    writeFileSync(join(outDir, file), `${f.bytes.toString('hex')}\n`);
    captures.push({ client, file, apiKey, apiVersion, direction: 'request' });
  }
  // Sluice's responses as each client received them: the tests decode them with the client's
  // own response parsers (kafkajs), proving the bytes meet that client's expectations.
  for (const f of tap.frames) {
    if (f.direction !== 'response') continue;
    const req = byCorrelation.get(`${f.conn}/${f.bytes.readInt32BE(0)}`);
    if (!req) continue;
    const key = `resp-${req.apiKey}-${req.apiVersion}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const file = `${client}-response-${req.apiKey}-v${req.apiVersion}.hex`;
    writeFileSync(join(outDir, file), `${f.bytes.toString('hex')}\n`);
    captures.push({
      client,
      file,
      apiKey: req.apiKey,
      apiVersion: req.apiVersion,
      direction: 'response',
    });
  }
}

async function main(): Promise<void> {
  mkdirSync(outDir, { recursive: true });
  const tapPort = await freePort();
  const broker = await startBroker({ port: 0, config: { 'advertised.port': tapPort } });
  const captures: Capture[] = [];
  try {
    const kafkajsTap = await withTap(broker.port, tapPort, async (port) => {
      const kafka = new Kafka({
        clientId: 'golden-kafkajs',
        brokers: [`127.0.0.1:${port}`],
        logLevel: logLevel.NOTHING,
      });
      const admin = kafka.admin();
      await admin.connect();
      await admin.createTopics({ topics: [{ topic: 'golden', numPartitions: 1 }] });
      await admin.disconnect();
      const producer = kafka.producer();
      await producer.connect();
      await producer.send({
        topic: 'golden',
        acks: -1,
        messages: [{ key: 'k', value: 'v', headers: { h: 'x' } }],
      });
      await producer.disconnect();
    });
    save('kafkajs', kafkajsTap, captures);
    const kcatTap = await withTap(broker.port, tapPort, async (port) => {
      const b = `127.0.0.1:${port}`;
      await kcat(
        ['-b', b, '-P', '-t', 'golden', '-p', '0', '-X', 'client.id=golden-kcat'],
        'hello\n',
      );
      await kcat([
        '-b',
        b,
        '-C',
        '-t',
        'golden',
        '-p',
        '0',
        '-o',
        'beginning',
        '-e',
        '-X',
        'client.id=golden-kcat',
      ]);
    });
    save('kcat', kcatTap, captures);
    const platTap = await withTap(broker.port, tapPort, async (port) => {
      const pk = await import('@platformatic/kafka');
      const producer = new pk.Producer({
        clientId: 'golden-platformatic',
        bootstrapBrokers: [`127.0.0.1:${port}`],
        serializers: pk.stringSerializers,
      });
      await producer.send({ messages: [{ topic: 'golden', key: 'k', value: 'v', partition: 0 }] });
      await producer.close();
    });
    save('platformatic', platTap, captures);
  } finally {
    await broker.stop();
  }
  writeFileSync(join(outDir, 'manifest.json'), `${JSON.stringify(captures, null, 2)}\n`);
  process.stdout.write(`captured ${captures.length} frames into test/fixtures/golden\n`);
}

await main();
