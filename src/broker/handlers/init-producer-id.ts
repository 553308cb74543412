/**
 * InitProducerId (API key 22), versions 0-4.
 *
 * Version notes: v2 flexible; v3 lets a producer pass its current id and epoch to bump the epoch
 * (KIP-360) instead of getting a new id. v5 (transaction v2) is not advertised.
 *
 * Idempotent producers (null transactional id) get a fresh producer id with epoch 0, or with v3+
 * their own id with the next epoch (a new id once the epoch would overflow int16).
 * In cluster mode ids come from blocks claimed in etcd (src/cluster/producer-id-blocks.ts), so no
 * two brokers hand out the same id.
 * Not implemented: transactional ids (no transaction coordinator yet); such a request gets
 * UNSUPPORTED_VERSION, which clients report as "the broker does not support transactions".
 */

import { ErrorCode } from '../../protocol/generated/errors.js';
import type {
  InitProducerIdRequest,
  InitProducerIdResponse,
} from '../../protocol/generated/init-producer-id.js';
import type { Handler } from './handler.js';

const EPOCH_MAX = 32767;

export const initProducerIdHandler: Handler<InitProducerIdRequest, InitProducerIdResponse> = {
  apiKey: 22,
  name: 'InitProducerId',
  minVersion: 0,
  maxVersion: 4,
  async handle(req, ctx) {
    const base = { throttleTimeMs: 0, errorCode: 0, producerId: -1, producerEpoch: -1 };
    if (req.transactionalId !== null) return { ...base, errorCode: ErrorCode.UNSUPPORTED_VERSION };
    if (req.producerId >= 0 && req.producerEpoch >= 0 && req.producerEpoch < EPOCH_MAX) {
      return { ...base, producerId: req.producerId, producerEpoch: req.producerEpoch + 1 };
    }
    return { ...base, producerId: await ctx.core.allocateProducerId(), producerEpoch: 0 };
  },
};
