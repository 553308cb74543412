/**
 * Parses V8's `--trace-gc-nvp` output (one line per collection) into events. Node 20 prefixes a
 * line with `[pid:isolate]`, Node 24 with `[pid:isolate:thread]`, and the two order the fields
 * differently, so fields are read by name. Test-only; stateless.
 */

export interface GcEvent {
  /** The isolate's address: one per thread (the network thread, each worker). */
  isolate: string;
  /** Milliseconds since the isolate started (about the process start for the main thread). */
  timeMs: number;
  /** `s` scavenge, `mc` mark-compact (full), and V8's other kinds as printed. */
  kind: string;
  /** Bytes this collection promoted to the old generation (scavenges; 0 when not printed). */
  promotedBytes: number;
  /** Young-generation bytes that survived this collection (scavenges; 0 when not printed). */
  survivedBytes: number;
}

export function parseGcTrace(text: string): GcEvent[] {
  const out: GcEvent[] = [];
  for (const m of text.matchAll(/^\[\d+:(0x[0-9a-f]+)(?::\d+)?\]\s+(\d+) ms: (.*)$/gm)) {
    const fields = m[3] as string;
    const kind = / gc=(\w+)/.exec(fields)?.[1];
    if (kind === undefined) continue;
    out.push({
      isolate: m[1] as string,
      timeMs: Number(m[2]),
      kind,
      promotedBytes: Number(/ promoted=(\d+)/.exec(fields)?.[1] ?? 0),
      survivedBytes: Number(/ new_space_survived=(\d+)/.exec(fields)?.[1] ?? 0),
    });
  }
  return out;
}
