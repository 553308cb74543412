/**
 * Key and value serializers (record fields to bytes) and deserializers (bytes back), built in:
 * bytes, string (UTF-8) and JSON. Any function of the same shape can replace them.
 * Stateless; thread-safe.
 */

export type Serializer<T> = (data: T, topic: string) => Buffer | null;
export type Deserializer<T> = (data: Buffer | null, topic: string) => T;

/** Bytes as they are (Uint8Array views are wrapped without a copy); null stays null. */
export const bytesSerializer: Serializer<Uint8Array | null | undefined> = (data) => {
  if (data === null || data === undefined) return null;
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
};

/** UTF-8 strings; null stays null. */
export const stringSerializer: Serializer<string | null | undefined> = (data) =>
  data === null || data === undefined ? null : Buffer.from(data, 'utf8');

/** JSON text in UTF-8; null and undefined become a null field. */
export const jsonSerializer: Serializer<unknown> = (data) =>
  data === null || data === undefined ? null : Buffer.from(JSON.stringify(data), 'utf8');

/** The default: Buffers and Uint8Arrays as bytes, strings as UTF-8, null as null. */
export const defaultSerializer: Serializer<Buffer | Uint8Array | string | null | undefined> = (
  data,
  topic,
) => (typeof data === 'string' ? stringSerializer(data, topic) : bytesSerializer(data, topic));

export const bytesDeserializer: Deserializer<Buffer | null> = (data) => data;
export const stringDeserializer: Deserializer<string | null> = (data) =>
  data === null ? null : data.toString('utf8');
export const jsonDeserializer: Deserializer<unknown> = (data) =>
  data === null ? null : (JSON.parse(data.toString('utf8')) as unknown);
