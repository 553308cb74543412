/**
 * The request-handler contract: one file per API key under `src/broker/handlers/`, each
 * exporting a `Handler` that declares its version range. `registry.ts` collects them;
 * ApiVersions answers from that registry, so the advertised ranges cannot drift from what is
 * implemented.
 */

import type { BrokerCore } from '../broker-core.js';
import type { ConnectionScope } from '../connection-scope.js';

export interface RequestContext {
  readonly core: BrokerCore;
  readonly apiVersion: number;
  readonly correlationId: number;
  readonly clientId: string | null;
  /** Remote address, for logs. */
  readonly peer: string;
  /** State of the client connection across its requests; null when there is no connection. */
  readonly scope: ConnectionScope | null;
  /** Registers work to run once the response has been written (or the connection died). */
  onSent(fn: () => void): void;
}

export interface Handler<Req = never, Res = unknown> {
  readonly apiKey: number;
  readonly name: string;
  readonly minVersion: number;
  readonly maxVersion: number;
  /** Returns the response body, or null when the request gets no response (acks=0 produce). */
  handle(req: Req, ctx: RequestContext): Promise<Res | null> | Res | null;
}

/** Kafka's "authorized operations not requested" sentinel. */
export const AUTHORIZED_OPERATIONS_OMITTED = -2147483648;
