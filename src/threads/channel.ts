/**
 * Channel: the duplex link between the network (main) thread and one partition-owner worker.
 * Requests travel main -> worker, completions worker -> main. Both directions have the same
 * interface, `ChannelEndpoint`, backed by one of two transports:
 *
 * - `ring` (default): two SPSC rings in SharedArrayBuffers (`ring.ts`).
 * - `postmessage` (debugging only): a MessageChannel carries the bytes, while a data-less ring
 *   control buffer per direction keeps the same capacity limit (bytes in flight, counted as ring
 *   records), the same `false` on full, and the same sleep/wake protocol. Receiving uses
 *   `receiveMessageOnPort`, so it needs no event-loop turn and a worker can block in
 *   `waitForData` exactly as with rings.
 *
 * The switch: `createChannel({ transport })`, or the environment variable
 * `SLUICE_TRANSPORT=postmessage` when no transport is given.
 *
 * Setup: the main thread calls `createChannel`, keeps `main`, and sends `workerInit` to the worker
 * (in `workerData` or a message) with `transferList`; the worker calls `openChannel(workerInit)`.
 *
 * Waiting rule (avoids a deadlock that is easy to write): a side that has something to send but
 * finds the outgoing direction full, and nothing to receive, must wait for *space*
 * (`waitForSpace*`) unless it knows a message is owed to it. Example: the main thread has received
 * every completion it is owed, yet the request ring is still full because the worker has not
 * released the bytes it just read; waiting for data there waits forever, since the worker, done
 * with its batch, goes to sleep waiting for requests. The broker keeps this simple by having the
 * worker send a completion for every request (acks=0 included), so "completions owed > 0" says
 * which wait is right.
 */

import { MessageChannel, type MessagePort, receiveMessageOnPort } from 'node:worker_threads';
import {
  createControlBuffer,
  createRingBuffer,
  RingClosedError,
  RingConsumer,
  RingControl,
  type RingMessageHandler,
  RingProducer,
  type RingWaitResult,
} from './ring.js';
import {
  CONSUMER_SLEEPING_INDEX,
  CONSUMER_WAKE_INDEX,
  HEAD_INDEX,
  PRODUCER_SLEEPING_INDEX,
  PRODUCER_WAKE_INDEX,
  recordBytes,
  TAIL_INDEX,
} from './ring-layout.js';

export type Transport = 'ring' | 'postmessage';

/** Default capacity of each direction: 4 MiB (room for 256 full 16 KiB produce batches). */
export const CHANNEL_CAPACITY_BYTES_DEFAULT = 4 * 1024 * 1024;

/** One end of a channel: sends on one direction, receives on the other. One owner thread. */
export interface ChannelEndpoint {
  readonly transport: Transport;
  /** Largest payload one message may carry. */
  readonly maxPayloadBytes: number;
  /** Sends one message; false if the outgoing direction is full (backpressure). */
  trySend(payload: Uint8Array, tag?: number): boolean;
  /** Zero-copy send: a view to encode into, or null if full; finish with `commit`. */
  reserve(payloadBytes: number, tag?: number): Uint8Array | null;
  /**
   * Sends the reserved message. `lazy`: it need not wake a sleeping receiver, which handles it at
   * its next wake-up (another message, a timeout of its wait, or the ring filling past half).
   */
  commit(usedBytes?: number, lazy?: boolean): void;
  /** Handles up to `maxMessages` received messages in order; returns how many. */
  drain(fn: RingMessageHandler, maxMessages: number): number;
  /** Blocks (workers only) until a message arrives, the channel closes, or time runs out. */
  waitForData(timeoutMs: number): RingWaitResult;
  /** Main-thread-safe variant of `waitForData`. */
  waitForDataAsync(timeoutMs: number): Promise<RingWaitResult>;
  /** Blocks (workers only) until a send of `payloadBytes` fits. */
  waitForSpace(payloadBytes: number, timeoutMs: number): RingWaitResult;
  waitForSpaceAsync(payloadBytes: number, timeoutMs: number): Promise<RingWaitResult>;
  /** Closes both directions and wakes every waiter on either side. */
  close(): void;
  readonly closed: boolean;
}

/** Everything a worker needs to open its end; structured-cloneable. */
export interface ChannelInit {
  readonly transport: Transport;
  /** main -> worker direction (a ring, or a control buffer for postmessage). */
  readonly requestBuffer: SharedArrayBuffer;
  /** worker -> main direction. */
  readonly completionBuffer: SharedArrayBuffer;
  /** postmessage transport only: the worker's MessagePort (must be in the transfer list). */
  readonly port: MessagePort | null;
}

export interface ChannelOptions {
  /** Bytes of each direction (power of two); default CHANNEL_CAPACITY_BYTES_DEFAULT. */
  capacityBytes?: number;
  /** Default: `SLUICE_TRANSPORT` from the environment, else `ring`. */
  transport?: Transport;
}

export interface ChannelPair {
  readonly main: ChannelEndpoint;
  readonly workerInit: ChannelInit;
  /** Pass as the transferList of the postMessage / Worker options that carries `workerInit`. */
  readonly transferList: MessagePort[];
}

/** Reads the transport switch from the environment. */
export function transportFromEnv(env: NodeJS.ProcessEnv = process.env): Transport {
  const value = env.SLUICE_TRANSPORT;
  if (value === undefined || value === '' || value === 'ring') return 'ring';
  if (value === 'postmessage') return 'postmessage';
  throw new Error(`SLUICE_TRANSPORT must be 'ring' or 'postmessage', got '${value}'`);
}

/** Creates both ends' shared state; call on the main thread. */
export function createChannel(options: ChannelOptions = {}): ChannelPair {
  const capacityBytes = options.capacityBytes ?? CHANNEL_CAPACITY_BYTES_DEFAULT;
  const transport = options.transport ?? transportFromEnv();
  if (transport === 'ring') {
    const workerInit: ChannelInit = {
      transport,
      requestBuffer: createRingBuffer(capacityBytes),
      completionBuffer: createRingBuffer(capacityBytes),
      port: null,
    };
    const main = new RingEndpoint(workerInit.requestBuffer, workerInit.completionBuffer);
    return { main, workerInit, transferList: [] };
  }
  const { port1, port2 } = new MessageChannel();
  const workerInit: ChannelInit = {
    transport,
    requestBuffer: createControlBuffer(capacityBytes),
    completionBuffer: createControlBuffer(capacityBytes),
    port: port2,
  };
  const main = new PostEndpoint(port1, workerInit.requestBuffer, workerInit.completionBuffer);
  return { main, workerInit, transferList: [port2] };
}

/** Opens the worker's end (sends completions, receives requests). */
export function openChannel(init: ChannelInit): ChannelEndpoint {
  if (init.transport === 'ring') return new RingEndpoint(init.completionBuffer, init.requestBuffer);
  if (init.port === null) throw new TypeError('postmessage channel init without a port');
  return new PostEndpoint(init.port, init.completionBuffer, init.requestBuffer);
}

/** Ring-backed end. Owned by one thread (the one holding this end); not thread-safe. */
class RingEndpoint implements ChannelEndpoint {
  readonly transport = 'ring';
  readonly maxPayloadBytes: number;
  private readonly out: RingProducer;
  private readonly in: RingConsumer;

  constructor(outBuffer: SharedArrayBuffer, inBuffer: SharedArrayBuffer) {
    this.out = new RingProducer(outBuffer);
    this.in = new RingConsumer(inBuffer);
    this.maxPayloadBytes = this.out.maxPayloadBytes;
  }

  trySend(payload: Uint8Array, tag = 0): boolean {
    return this.out.tryPush(payload, tag);
  }
  reserve(payloadBytes: number, tag = 0): Uint8Array | null {
    return this.out.reserve(payloadBytes, tag);
  }
  commit(usedBytes?: number, lazy?: boolean): void {
    this.out.commit(usedBytes, lazy);
  }
  drain(fn: RingMessageHandler, maxMessages: number): number {
    return this.in.drain(fn, maxMessages);
  }
  waitForData(timeoutMs: number): RingWaitResult {
    return this.in.waitForData(timeoutMs);
  }
  waitForDataAsync(timeoutMs: number): Promise<RingWaitResult> {
    return this.in.waitForDataAsync(timeoutMs);
  }
  waitForSpace(payloadBytes: number, timeoutMs: number): RingWaitResult {
    return this.out.waitForSpace(payloadBytes, timeoutMs);
  }
  waitForSpaceAsync(payloadBytes: number, timeoutMs: number): Promise<RingWaitResult> {
    return this.out.waitForSpaceAsync(payloadBytes, timeoutMs);
  }
  close(): void {
    this.out.close();
    this.in.close();
  }
  get closed(): boolean {
    return this.out.closed || this.in.closed;
  }
}

/**
 * Sending half of a postMessage direction: TAIL counts record bytes sent. Owned by the sending
 * thread; not thread-safe.
 */
class PostSender extends RingControl {
  private sentBytes: number;
  private pending: { view: Uint8Array<ArrayBuffer>; tag: number } | null = null;

  constructor(
    buffer: SharedArrayBuffer,
    private readonly port: MessagePort,
  ) {
    super(buffer, false);
    this.sentBytes = Atomics.load(this.ctl, TAIL_INDEX) >>> 0;
  }

  canSend(payloadBytes: number): boolean {
    const inFlightBytes = (this.sentBytes - (Atomics.load(this.ctl, HEAD_INDEX) >>> 0)) >>> 0;
    return this.capacityBytes - inFlightBytes >= recordBytes(payloadBytes);
  }

  reserve(payloadBytes: number, tag: number): Uint8Array | null {
    if (this.pending !== null) throw new Error('channel reservation already open; commit it first');
    this.checkPayload(payloadBytes, tag);
    if (this.closed) throw new RingClosedError();
    if (!this.canSend(payloadBytes)) return null;
    this.pending = { view: new Uint8Array(payloadBytes), tag };
    return this.pending.view;
  }

  commit(usedBytes?: number, lazy = false): void {
    const pending = this.pending;
    if (pending === null) throw new Error('no channel reservation to commit');
    const length = usedBytes ?? pending.view.length;
    if (!Number.isInteger(length) || length < 0 || length > pending.view.length) {
      throw new RangeError(`commit of ${length} bytes, reserved ${pending.view.length}`);
    }
    this.pending = null;
    const payload = length === pending.view.length ? pending.view : pending.view.slice(0, length);
    // postMessage queues the message on the receiving port synchronously, so by the time TAIL
    // says "sent", receiveMessageOnPort on the other thread can take it.
    this.port.postMessage([pending.tag, payload], [payload.buffer]);
    this.sentBytes = (this.sentBytes + recordBytes(length)) >>> 0;
    Atomics.store(this.ctl, TAIL_INDEX, this.sentBytes | 0);
    this.wakeConsumer(lazy);
  }

  waitForSpace(payloadBytes: number, timeoutMs: number): RingWaitResult {
    this.checkPayload(payloadBytes, 0);
    const ready = (): boolean => this.canSend(payloadBytes);
    return this.waitBlocking(ready, PRODUCER_SLEEPING_INDEX, PRODUCER_WAKE_INDEX, timeoutMs);
  }

  waitForSpaceAsync(payloadBytes: number, timeoutMs: number): Promise<RingWaitResult> {
    this.checkPayload(payloadBytes, 0);
    const ready = (): boolean => this.canSend(payloadBytes);
    return this.waitNonBlocking(ready, PRODUCER_SLEEPING_INDEX, PRODUCER_WAKE_INDEX, timeoutMs);
  }
}

/**
 * Receiving half of a postMessage direction: HEAD counts record bytes received. Owned by the
 * receiving thread; not thread-safe.
 */
class PostReceiver extends RingControl {
  private receivedBytes: number;

  constructor(
    buffer: SharedArrayBuffer,
    private readonly port: MessagePort,
  ) {
    super(buffer, false);
    this.receivedBytes = Atomics.load(this.ctl, HEAD_INDEX) >>> 0;
  }

  hasData(): boolean {
    return Atomics.load(this.ctl, TAIL_INDEX) >>> 0 !== this.receivedBytes;
  }

  drain(fn: RingMessageHandler, maxMessages: number): number {
    if (!(maxMessages > 0))
      throw new RangeError(`maxMessages must be positive, got ${maxMessages}`);
    let count = 0;
    let received = this.receivedBytes;
    try {
      while (count < maxMessages) {
        const packet = receiveMessageOnPort(this.port);
        if (packet === undefined) break;
        const [tag, payload] = packet.message as [number, Uint8Array];
        received = (received + recordBytes(payload.length)) >>> 0;
        count++;
        fn(payload, tag);
      }
    } finally {
      if (received !== this.receivedBytes) {
        this.receivedBytes = received;
        Atomics.store(this.ctl, HEAD_INDEX, received | 0);
        this.wakeIfSleeping(PRODUCER_SLEEPING_INDEX, PRODUCER_WAKE_INDEX);
      }
    }
    return count;
  }

  waitForData(timeoutMs: number): RingWaitResult {
    const ready = (): boolean => this.hasData();
    return this.waitBlocking(ready, CONSUMER_SLEEPING_INDEX, CONSUMER_WAKE_INDEX, timeoutMs);
  }

  waitForDataAsync(timeoutMs: number): Promise<RingWaitResult> {
    const ready = (): boolean => this.hasData();
    return this.waitNonBlocking(ready, CONSUMER_SLEEPING_INDEX, CONSUMER_WAKE_INDEX, timeoutMs);
  }
}

/** postMessage-backed end. Owned by one thread; not thread-safe. */
class PostEndpoint implements ChannelEndpoint {
  readonly transport = 'postmessage';
  readonly maxPayloadBytes: number;
  private readonly out: PostSender;
  private readonly in: PostReceiver;

  constructor(port: MessagePort, outBuffer: SharedArrayBuffer, inBuffer: SharedArrayBuffer) {
    this.out = new PostSender(outBuffer, port);
    this.in = new PostReceiver(inBuffer, port);
    this.maxPayloadBytes = this.out.maxPayloadBytes;
  }

  trySend(payload: Uint8Array, tag = 0): boolean {
    const view = this.out.reserve(payload.length, tag);
    if (view === null) return false;
    view.set(payload);
    this.out.commit();
    return true;
  }
  reserve(payloadBytes: number, tag = 0): Uint8Array | null {
    return this.out.reserve(payloadBytes, tag);
  }
  commit(usedBytes?: number, lazy?: boolean): void {
    this.out.commit(usedBytes, lazy);
  }
  drain(fn: RingMessageHandler, maxMessages: number): number {
    return this.in.drain(fn, maxMessages);
  }
  waitForData(timeoutMs: number): RingWaitResult {
    return this.in.waitForData(timeoutMs);
  }
  waitForDataAsync(timeoutMs: number): Promise<RingWaitResult> {
    return this.in.waitForDataAsync(timeoutMs);
  }
  waitForSpace(payloadBytes: number, timeoutMs: number): RingWaitResult {
    return this.out.waitForSpace(payloadBytes, timeoutMs);
  }
  waitForSpaceAsync(payloadBytes: number, timeoutMs: number): Promise<RingWaitResult> {
    return this.out.waitForSpaceAsync(payloadBytes, timeoutMs);
  }
  close(): void {
    this.out.close();
    this.in.close();
  }
  get closed(): boolean {
    return this.out.closed || this.in.closed;
  }
}
