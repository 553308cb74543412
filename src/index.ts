/**
 * Sluice: a Kafka-compatible message broker core for Node.js.
 *
 * Public entry point. The broker, client and CLI are exported from here as they land.
 */

export * from './protocol/index.js';
