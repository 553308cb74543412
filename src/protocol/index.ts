/** Protocol layer (sans-io): primitives, generated codecs, framing, record batches, murmur2. */

export {
  decodeRequest,
  decodeResponse,
  encodeRequest,
  encodeResponse,
  requestHeaderVersion,
  responseHeaderVersion,
} from './frame.js';
export { ErrorCode, type ErrorInfo, type ErrorName, errorInfo } from './generated/errors.js';
export { type ApiCodec, allCodecs, codecFor } from './generated/index.js';
export { murmur2, partitionForKey, toPositive } from './murmur2.js';
export { ProtocolDecodeError, Reader } from './reader.js';
export * from './records/index.js';
export type { EncodedChunk, RecordsRef } from './writer.js';
export { Writer } from './writer.js';
