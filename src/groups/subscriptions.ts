/**
 * The topics a consumer group's members subscribe to, read from their JoinGroup metadata (the
 * consumer protocol's Subscription), as Kafka's coordinator reads them to refuse OffsetDelete on
 * a topic the group consumes. Pure: bytes in, names out.
 */

import { decodeSubscription } from '../client/group/consumer-protocol.js';
import type { Group } from './group.js';

const CONSUMER_PROTOCOL_TYPE = 'consumer';

/**
 * The union of the members' subscribed topics, or null when it cannot be known: the group is not
 * a consumer group, has no protocol chosen yet, or a member's metadata does not decode.
 */
export function subscribedTopics(group: Group): Set<string> | null {
  if (group.protocolType !== CONSUMER_PROTOCOL_TYPE || group.protocolName === null) return null;
  const topics = new Set<string>();
  for (const m of group.members.values()) {
    const metadata = m.protocols.find((p) => p.name === group.protocolName)?.metadata;
    if (metadata === undefined) return null;
    const subscribed = decodeTopics(metadata);
    if (subscribed === null) return null;
    for (const t of subscribed) topics.add(t);
  }
  return topics;
}

/** A Subscription's topics; null when the bytes are not one. */
function decodeTopics(bytes: Uint8Array): string[] | null {
  try {
    return decodeSubscription(bytes).topics;
  } catch {
    return null; // not the consumer protocol's layout (ConsumerProtocolError)
  }
}
