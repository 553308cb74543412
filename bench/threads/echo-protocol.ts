/** What `ring-vs-postmessage.ts` and its worker (`echo-worker.ts`) agree on. */

import type { MessagePort } from 'node:worker_threads';
import type { ChannelInit } from '../../src/threads/channel.js';

/** Tag of the message that tells the worker to stop. */
export const STOP_TAG = 0xffff_fffe;

export type EchoJob =
  | { mode: 'echo' | 'latency'; init: ChannelInit }
  | { mode: 'raw-echo'; port: MessagePort };
