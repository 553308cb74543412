/**
 * Dispatcher: one request frame in, response chunks out. Sits between the network edge (which
 * frames bytes and keeps responses in order) and the handlers (which know nothing about bytes).
 *
 * - Decodes the header and body with the generated codecs.
 * - ApiVersions quirks: an unsupported ApiVersions version is answered, in the v0 layout, with
 *   UNSUPPORTED_VERSION and the supported ranges (so clients can downgrade); the ApiVersions
 *   response header is v0 even for flexible versions (the codec's header rules handle that).
 * - Any other unknown api key, unsupported version or malformed body closes the connection, as
 *   Kafka does: the request cannot be answered in a layout the client would understand.
 * - A handler's records fields that are file slices become FileSlice chunks for sendfile.
 *
 * Stateless apart from the core it is given; used on the network (main) thread only.
 */

import type { FileSlice } from '../io/file-io.js';
import { decodeRequest, encodeResponse, isBufferRecordsRef } from '../protocol/frame.js';
import { ErrorCode } from '../protocol/generated/errors.js';
import { isRecordsRef } from '../protocol/writer.js';
import type { BrokerCore } from './broker-core.js';
import type { ConnectionScope } from './connection-scope.js';
import { apiVersionsResponse } from './handlers/api-versions.js';
import { isSliceRecords } from './handlers/fetch.js';
import type { RequestContext } from './handlers/handler.js';
import { allHandlers, handlerFor } from './handlers/registry.js';

const API_VERSIONS_KEY = 18;

export type ResponseChunk = Buffer | FileSlice;

export interface DispatchResult {
  chunks: ResponseChunk[];
  /** Run after the chunks are written or the connection died (releases file leases). */
  release: () => void;
}

export class ProtocolViolation extends Error {
  override readonly name = 'ProtocolViolation';
}

export interface PeerInfo {
  readonly remote: string;
  /** The connection's scope; absent for requests that come from no connection. */
  readonly scope?: ConnectionScope;
}

export async function dispatch(
  core: BrokerCore,
  frame: Buffer,
  peer: PeerInfo,
): Promise<DispatchResult | null> {
  const decoded = decodeRequest(frame);
  if (!decoded.ok) {
    const h = decoded.header;
    if (h && h.apiKey === API_VERSIONS_KEY) return unsupportedApiVersions(h.correlationId);
    throw new ProtocolViolation(decoded.error.message);
  }
  const { header, body } = decoded;
  const handler = handlerFor(header.apiKey);
  if (
    !handler ||
    header.apiVersion < handler.minVersion ||
    header.apiVersion > handler.maxVersion
  ) {
    if (header.apiKey === API_VERSIONS_KEY) return unsupportedApiVersions(header.correlationId);
    throw new ProtocolViolation(
      `api key ${header.apiKey} version ${header.apiVersion} is not supported`,
    );
  }
  const releases: (() => void)[] = [];
  const ctx: RequestContext = {
    core,
    apiVersion: header.apiVersion,
    correlationId: header.correlationId,
    clientId: header.clientId,
    peer: peer.remote,
    scope: peer.scope ?? null,
    onSent: (fn) => releases.push(fn),
  };
  const release = () => {
    for (const r of releases.splice(0)) r();
  };
  let response: unknown;
  try {
    response = await handler.handle(body as never, ctx);
  } catch (err) {
    release();
    throw err;
  }
  if (response === null) {
    release();
    return null;
  }
  const encoded = encodeResponse(header.apiKey, header.apiVersion, header.correlationId, response);
  return { chunks: toChunks(encoded), release };
}

function toChunks(encoded: ReturnType<typeof encodeResponse>): ResponseChunk[] {
  const out: ResponseChunk[] = [];
  for (const c of encoded) {
    if (!isRecordsRef(c)) out.push(c);
    else if (isSliceRecords(c)) out.push(...c.slices);
    else if (isBufferRecordsRef(c)) out.push(c.buffer);
    else throw new Error('records ref without file slices or buffer');
  }
  return out;
}

function unsupportedApiVersions(correlationId: number): DispatchResult {
  const apis = allHandlers()
    .map((h) => ({ apiKey: h.apiKey, minVersion: h.minVersion, maxVersion: h.maxVersion }))
    .sort((a, b) => a.apiKey - b.apiKey);
  // v0 layout regardless of the requested version: the client may not speak it.
  const body = apiVersionsResponse(apis, ErrorCode.UNSUPPORTED_VERSION);
  const encoded = encodeResponse(API_VERSIONS_KEY, 0, correlationId, body);
  return { chunks: toChunks(encoded), release: () => undefined };
}
