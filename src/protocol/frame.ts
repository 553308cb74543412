/**
 * Request and response framing (sans-io): headers plus bodies, through the generated codecs.
 *
 * - Request header: v1 (api key, version, correlation id, nullable client id) for classic
 *   versions, v2 (the same plus a tagged-field section) for flexible versions. The client id is a
 *   classic nullable string even in v2.
 * - Response header: v0 (correlation id) for classic versions, v1 (plus tagged fields) for
 *   flexible ones, EXCEPT ApiVersions, whose response header is always v0 so that a client can
 *   parse the answer before it knows which versions the broker speaks.
 * - Frames on the wire are prefixed with their size (int32); `decodeRequest` takes a frame
 *   without the prefix, `encodeResponse` returns chunks that include it.
 *
 * Never throws on bad input: `decodeRequest` returns a typed error instead.
 */

import { type ApiCodec, codecFor } from './generated/index.js';
import { type ProtocolDecodeError, Reader } from './reader.js';
import {
  chunksByteLength,
  type EncodedChunk,
  type RecordsRef,
  sizeOfNullableString,
  sizeOfUvarint,
  Writer,
} from './writer.js';

export const API_VERSIONS_API_KEY = 18;

export interface RequestHeader {
  apiKey: number;
  apiVersion: number;
  correlationId: number;
  clientId: string | null;
}

export type DecodeErrorKind =
  | 'truncated-header'
  | 'unknown-api'
  | 'unsupported-version'
  | 'malformed-body';

export interface RequestDecodeError {
  kind: DecodeErrorKind;
  message: string;
}

export type DecodedRequest =
  | { ok: true; header: RequestHeader; body: unknown; codec: ApiCodec }
  | { ok: false; header: RequestHeader | null; error: RequestDecodeError };

function isFlexible(codec: ApiCodec, version: number): boolean {
  return codec.flexibleMin >= 0 && version >= codec.flexibleMin;
}

export function requestHeaderVersion(apiKey: number, apiVersion: number): 1 | 2 {
  const codec = codecFor(apiKey);
  return codec && isFlexible(codec, apiVersion) ? 2 : 1;
}

export function responseHeaderVersion(apiKey: number, apiVersion: number): 0 | 1 {
  if (apiKey === API_VERSIONS_API_KEY) return 0;
  const codec = codecFor(apiKey);
  return codec && isFlexible(codec, apiVersion) ? 1 : 0;
}

/** Decodes a request frame (the bytes after the size prefix). */
export function decodeRequest(frame: Buffer): DecodedRequest {
  const r = new Reader(frame);
  const apiKey = r.int16();
  const apiVersion = r.int16();
  const correlationId = r.int32();
  const clientId = r.nullableString();
  if (r.error)
    return {
      ok: false,
      header: null,
      error: { kind: 'truncated-header', message: r.error.message },
    };
  const header: RequestHeader = { apiKey, apiVersion, correlationId, clientId };
  const codec = codecFor(apiKey);
  if (!codec)
    return {
      ok: false,
      header,
      error: { kind: 'unknown-api', message: `unknown api key ${apiKey}` },
    };
  if (apiVersion < codec.minVersion || apiVersion > codec.maxVersion) {
    const message = `${codec.name} version ${apiVersion} is outside ${codec.minVersion}-${codec.maxVersion}`;
    return { ok: false, header, error: { kind: 'unsupported-version', message } };
  }
  if (isFlexible(codec, apiVersion)) r.taggedFields();
  const body = r.error ? null : codec.readRequest(r, apiVersion);
  // Re-read through a widened type: TypeScript keeps the narrowing from the check above.
  const bodyError = r.error as ProtocolDecodeError | null;
  if (bodyError) {
    return {
      ok: false,
      header,
      error: {
        kind: 'malformed-body',
        message: `${codec.name} v${apiVersion}: ${bodyError.message}`,
      },
    };
  }
  return { ok: true, header, body, codec };
}

function requireCodec(apiKey: number): ApiCodec {
  const codec = codecFor(apiKey);
  if (!codec) throw new Error(`no codec for api key ${apiKey}`);
  return codec;
}

/**
 * Encodes a response frame, size prefix included. Records fields holding a RecordsRef are left
 * out of the buffers and appear as chunks of their own, in wire order.
 */
export function encodeResponse(
  apiKey: number,
  apiVersion: number,
  correlationId: number,
  body: unknown,
): EncodedChunk[] {
  const codec = requireCodec(apiKey);
  const headerBytes = 4 + (responseHeaderVersion(apiKey, apiVersion) === 1 ? 1 : 0);
  const bodyBytes = codec.sizeOfResponse(body as never, apiVersion);
  const w = Writer.alloc(4 + headerBytes + bodyBytes);
  w.int32(0); // size, patched below once refs are known
  w.int32(correlationId);
  if (headerBytes === 5) w.uvarint(0);
  codec.writeResponse(w, body as never, apiVersion);
  w.assertFilled();
  const chunks = w.chunks();
  w.buf.writeInt32BE(chunksByteLength(chunks) - 4, 0);
  return chunks;
}

/** Encodes a request frame (client side), size prefix included. */
export function encodeRequest(
  apiKey: number,
  apiVersion: number,
  correlationId: number,
  clientId: string | null,
  body: unknown,
): Buffer {
  const codec = requireCodec(apiKey);
  const flexible = isFlexible(codec, apiVersion);
  const headerBytes = 8 + sizeOfNullableString(clientId) + (flexible ? sizeOfUvarint(0) : 0);
  const bodyBytes = codec.sizeOfRequest(body as never, apiVersion);
  const w = Writer.alloc(4 + headerBytes + bodyBytes);
  w.int32(headerBytes + bodyBytes);
  w.int16(apiKey);
  w.int16(apiVersion);
  w.int32(correlationId);
  w.nullableString(clientId);
  if (flexible) w.uvarint(0);
  codec.writeRequest(w, body as never, apiVersion);
  w.assertFilled();
  return w.buf;
}

/** A records payload held in memory, written after the surrounding bytes without a copy. */
export interface BufferRecordsRef extends RecordsRef {
  readonly buffer: Buffer;
}

/** Wraps `buffer` so a records field of a request body is sent as its own chunk (no copy). */
export function bufferRecordsRef(buffer: Buffer): BufferRecordsRef {
  return { kind: 'records-ref', byteLength: buffer.length, buffer };
}

/** True for a `bufferRecordsRef` (an in-memory records payload sent as its own chunk). */
export function isBufferRecordsRef(c: EncodedChunk): c is BufferRecordsRef {
  return !Buffer.isBuffer(c) && Buffer.isBuffer((c as Partial<BufferRecordsRef>).buffer);
}

/**
 * Encodes a request frame (client side), size prefix included, as buffers in wire order: the
 * header and fields in one buffer, and each records field given as a `bufferRecordsRef` as its
 * own chunk (the caller's buffer itself, not a copy). Concatenated, the chunks are byte for byte
 * what `encodeRequest` returns for the same body with plain buffers. The caller must not change a
 * referenced buffer until the frame is written.
 */
export function encodeRequestChunks(
  apiKey: number,
  apiVersion: number,
  correlationId: number,
  clientId: string | null,
  body: unknown,
): Buffer[] {
  const codec = requireCodec(apiKey);
  const flexible = isFlexible(codec, apiVersion);
  const headerBytes = 8 + sizeOfNullableString(clientId) + (flexible ? sizeOfUvarint(0) : 0);
  const bodyBytes = codec.sizeOfRequest(body as never, apiVersion);
  const w = Writer.alloc(4 + headerBytes + bodyBytes);
  w.int32(0); // size, patched below once refs are known
  w.int16(apiKey);
  w.int16(apiVersion);
  w.int32(correlationId);
  w.nullableString(clientId);
  if (flexible) w.uvarint(0);
  codec.writeRequest(w, body as never, apiVersion);
  w.assertFilled();
  const chunks = w.chunks();
  const out: Buffer[] = new Array(chunks.length);
  let bytes = 0;
  for (let i = 0; i < chunks.length; i++) {
    const c = chunks[i] as EncodedChunk;
    if (Buffer.isBuffer(c)) out[i] = c;
    else if (isBufferRecordsRef(c)) out[i] = c.buffer;
    else throw new Error('encodeRequestChunks: a records ref without a buffer');
    bytes += (out[i] as Buffer).length;
  }
  w.buf.writeInt32BE(bytes - 4, 0);
  return out;
}

export type DecodedResponse =
  | { ok: true; correlationId: number; body: unknown }
  | { ok: false; correlationId: number; message: string };

/** Decodes a response frame (the bytes after the size prefix), client side. */
export function decodeResponse(apiKey: number, apiVersion: number, frame: Buffer): DecodedResponse {
  const codec = requireCodec(apiKey);
  const r = new Reader(frame);
  const correlationId = r.int32();
  if (responseHeaderVersion(apiKey, apiVersion) === 1) r.taggedFields();
  const body = codec.readResponse(r, apiVersion);
  if (r.error) return { ok: false, correlationId, message: r.error.message };
  return { ok: true, correlationId, body };
}
