/**
 * The V8 flags the `sluice` command runs Node with: its first line is
 * `#!/usr/bin/env -S node` followed by these (a test keeps the two, and `npm start`, the same).
 * Benchmarks that start `sluice serve` as a child pass them too, so they measure what an
 * operator runs. An embedded broker runs with its host process's flags.
 *
 * `--min-semi-space-size=16`: the young generation starts at 16 MiB per semi-space, V8's usual
 * maximum on 64-bit, instead of 1 MiB. V8 grows it only when many objects survive a collection,
 * and a broker's requests leave almost nothing alive, so it stayed small: at 5,000 records/s
 * (one produce and one fetch each) the network thread collected it every 53 ms, stopping for
 * about 0.5 ms each time, and the owner thread every 134 ms. With 16 MiB the network thread
 * collects about every 110 ms, for about 0.7 ms. Costs about 40 MiB more resident memory under
 * load (none idle).
 */
export const SLUICE_NODE_FLAGS: readonly string[] = ['--min-semi-space-size=16'];
