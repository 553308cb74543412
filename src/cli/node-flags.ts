/**
 * The V8 flags the `sluice` command runs Node with: its first line is
 * `#!/usr/bin/env -S node` followed by these (a test keeps the two, and `npm start`, the same).
 * Benchmarks that start `sluice serve` as a child pass them too, so they measure what an
 * operator runs. An embedded broker runs with its host process's flags.
 *
 * `--min-semi-space-size=16`: the young generation starts at 16 MiB per semi-space, V8's usual
 * maximum on 64-bit, instead of 1 MiB. V8 grows it only after enough objects have survived
 * collections: at 5,000 records/s (one produce and one fetch each) the network thread collected
 * it every 53 ms, stopping for about 0.5 ms each time, until V8 grew it 8.6 s into the load; then
 * every 106 ms, for about 0.7 ms. With the flag a broker's first seconds under load run as its
 * steady state does. Costs 3 MiB of resident memory idle; under load V8 grows to the same size
 * without it.
 */
export const SLUICE_NODE_FLAGS: readonly string[] = ['--min-semi-space-size=16'];
