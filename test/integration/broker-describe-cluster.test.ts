/**
 * DescribeCluster (API 60) on a single embedded broker: the broker itself, as controller, with the
 * cluster id Metadata gives; an endpoint type other than brokers gets UNSUPPORTED_ENDPOINT_TYPE.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Broker, startBroker } from '../../src/broker/broker.js';
import type { DescribeClusterResponse } from '../../src/protocol/generated/describe-cluster.js';
import { ErrorCode } from '../../src/protocol/generated/errors.js';
import { RawClient } from '../support/raw-client.js';

describe('DescribeCluster (single broker)', () => {
  let broker: Broker;
  let client: RawClient;

  beforeAll(async () => {
    broker = await startBroker({ port: 0 });
    client = await RawClient.connect(broker.port);
  });

  afterAll(async () => {
    client?.close();
    await broker?.stop();
  });

  const describeCluster = (version: number, endpointType = 1) =>
    client.request<DescribeClusterResponse>(60, version, {
      includeClusterAuthorizedOperations: true,
      endpointType,
    });

  it('describes this broker as the one broker and controller, as Metadata does (v0, v1)', async () => {
    const m = await client.metadata([]);
    const nodeId = broker.core.identity.nodeId;
    for (const version of [0, 1]) {
      const d = await describeCluster(version);
      expect([d.errorCode, d.errorMessage, d.clusterId, d.controllerId]).toEqual([
        0,
        null,
        m.clusterId,
        nodeId,
      ]);
      expect(d.brokers).toEqual([
        { brokerId: nodeId, host: '127.0.0.1', port: broker.port, rack: null },
      ]);
      expect(d.clusterAuthorizedOperations).toBe(-2147483648); // no ACLs: "not requested"
    }
  });

  it('refuses the controllers endpoint type with UNSUPPORTED_ENDPOINT_TYPE', async () => {
    const d = await describeCluster(1, 2);
    expect([d.errorCode, d.brokers]).toEqual([ErrorCode.UNSUPPORTED_ENDPOINT_TYPE, []]);
    expect(d.errorMessage).toMatch(/endpoint type 2/);
  });
});
