/**
 * DescribeCluster (API key 60), versions 0-1 (flexible from v0).
 *
 * The cluster as Metadata describes it (the same brokers, cluster id and controller, see
 * `clusterShape`), for admin clients that ask this API first. v1 adds the endpoint type: brokers
 * (1) are described; controllers (2) have no endpoint of their own in Sluice, so any other type
 * gets UNSUPPORTED_ENDPOINT_TYPE, as a Kafka broker answers. Authorized operations: Sluice has no
 * ACLs, so they are "not requested" (INT32_MIN) whatever the request asks.
 */

import type {
  DescribeClusterRequest,
  DescribeClusterResponse,
} from '../../protocol/generated/describe-cluster.js';
import { ErrorCode } from '../../protocol/generated/errors.js';
import { AUTHORIZED_OPERATIONS_OMITTED, type Handler } from './handler.js';
import { clusterShape } from './metadata.js';

const BROKER_ENDPOINTS = 1;

export const describeClusterHandler: Handler<DescribeClusterRequest, DescribeClusterResponse> = {
  apiKey: 60,
  name: 'DescribeCluster',
  minVersion: 0,
  maxVersion: 1,
  async handle(req, ctx) {
    const { brokers, clusterId, controllerId } = clusterShape(ctx);
    const base = {
      throttleTimeMs: 0,
      endpointType: req.endpointType,
      clusterId: clusterId ?? '',
      clusterAuthorizedOperations: AUTHORIZED_OPERATIONS_OMITTED,
    };
    if (req.endpointType !== BROKER_ENDPOINTS) {
      return {
        ...base,
        errorCode: ErrorCode.UNSUPPORTED_ENDPOINT_TYPE,
        errorMessage: `endpoint type ${req.endpointType} is not served here (brokers are 1)`,
        controllerId: -1,
        brokers: [],
      };
    }
    return {
      ...base,
      errorCode: ErrorCode.NONE,
      errorMessage: null,
      controllerId,
      brokers: brokers.map((b) => ({
        brokerId: b.nodeId,
        host: b.host,
        port: b.port,
        rack: b.rack,
      })),
    };
  },
};
