/**
 * A Sluice group consumer in its own process, so a test can crash it for real (SIGKILL: no
 * LeaveGroup, no final commit, sockets closed by the kernel). Arguments: bootstrap, group id,
 * topic, session timeout in ms. Prints `#assigned p,p,...` after each assignment and then each
 * record value on its own line. Test-only; single-threaded.
 */

import { Consumer } from '../../src/client/consumer.js';
import { stringDeserializer } from '../../src/client/serializers.js';

const [bootstrap, groupId, topic, sessionTimeout] = process.argv.slice(2);
if (!bootstrap || !groupId || !topic || !sessionTimeout) {
  process.stderr.write('usage: group-consumer-child BOOTSTRAP GROUP TOPIC SESSION_TIMEOUT_MS\n');
  process.exit(2);
}

const consumer = new Consumer<string | null, string | null>({
  bootstrap,
  groupId,
  sessionTimeoutMs: Number(sessionTimeout),
  rebalanceTimeoutMs: 5000,
  heartbeatIntervalMs: 100,
  autoCommitIntervalMs: 100,
  autoOffsetReset: 'earliest',
  fetchMaxWaitMs: 100,
  valueDeserializer: stringDeserializer,
});
consumer.subscribe([topic], {
  onPartitionsAssigned: () => {
    const ps = consumer.assignment().map((tp) => tp.partition);
    process.stdout.write(`#assigned ${ps.sort((a, b) => a - b).join(',')}\n`);
  },
});
for (;;) {
  const records = await consumer.poll(200);
  if (records.length > 0) process.stdout.write(`${records.map((r) => r.value).join('\n')}\n`);
}
