/** Protocol layer (sans-io): primitives, generated codecs, record batches. */

export { ProtocolDecodeError, Reader } from './reader.js';
export type { EncodedChunk, RecordsRef } from './writer.js';
export { Writer } from './writer.js';
