/**
 * Record batches (RecordBatch v2): header view and produce validation for the broker; encoding,
 * decoding and compression codecs for clients; CRC-32C.
 */

export * from './batch-header.js';
export * from './compression.js';
export { CRC32C_NATIVE_MIN_BYTES, crc32c, crc32cImplementation, crc32cJs } from './crc32c.js';
export { decodeLz4Frames, Lz4FrameError, xxh32 } from './lz4-frame.js';
export * from './record-batch.js';
export * from './validate.js';
