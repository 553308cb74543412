/**
 * Reads Java-style `.properties` config files (Kafka's server.properties format): one
 * `key=value` (or `key: value`) per line, `#` and `!` comments, surrounding whitespace ignored.
 * Line continuations and unicode escapes are not supported (Kafka's own files do not use them);
 * a line without a separator is an error naming the line.
 */

export function parseProperties(text: string, source = 'properties'): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] as string).trim();
    if (line === '' || line.startsWith('#') || line.startsWith('!')) continue;
    const m = /^([^=:\s]+)\s*[=:]\s*(.*)$/.exec(line);
    if (!m) throw new Error(`${source}:${i + 1}: expected key=value, got "${line}"`);
    out[m[1] as string] = m[2] as string;
  }
  return out;
}

/** Parses one `key=value` pair from the command line. */
export function parseKeyValue(pair: string): [string, string] {
  const eq = pair.indexOf('=');
  if (eq <= 0) throw new Error(`expected key=value, got "${pair}"`);
  return [pair.slice(0, eq).trim(), pair.slice(eq + 1).trim()];
}
