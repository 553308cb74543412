/**
 * FindCoordinator (API key 10), versions 0-4.
 *
 * Version notes: v1 key type (0 group, 1 transaction) and error messages, v3 flexible, v4 batched
 * keys (KIP-699). v5+ (KIP-890 transaction v2 errors) is not advertised.
 *
 * On a single broker this broker coordinates every group. Transaction coordinators do not exist
 * yet: key type 1 gets COORDINATOR_NOT_AVAILABLE so transactional clients fail clearly.
 */

import { ErrorCode } from '../../protocol/generated/errors.js';
import type {
  FindCoordinatorRequest,
  FindCoordinatorResponse,
} from '../../protocol/generated/find-coordinator.js';
import type { Handler } from './handler.js';

const KEY_TYPE_GROUP = 0;

export const findCoordinatorHandler: Handler<FindCoordinatorRequest, FindCoordinatorResponse> = {
  apiKey: 10,
  name: 'FindCoordinator',
  minVersion: 0,
  maxVersion: 4,
  handle(req, ctx) {
    const { nodeId, host, port } = ctx.core.identity;
    const supported = req.keyType === KEY_TYPE_GROUP;
    const errorCode = supported ? 0 : ErrorCode.COORDINATOR_NOT_AVAILABLE;
    const errorMessage = supported ? null : 'transactions are not supported';
    const keys = ctx.apiVersion >= 4 ? req.coordinatorKeys : [req.key];
    return {
      throttleTimeMs: 0,
      errorCode,
      errorMessage,
      nodeId: supported ? nodeId : -1,
      host: supported ? host : '',
      port: supported ? port : -1,
      coordinators: keys.map((key) => ({
        key,
        nodeId: supported ? nodeId : -1,
        host: supported ? host : '',
        port: supported ? port : -1,
        errorCode,
        errorMessage,
      })),
    };
  },
};
