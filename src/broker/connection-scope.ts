/**
 * What lives as long as one client connection: state handlers keep between requests of that
 * connection (the Fetch read-ahead), and undo when it closes.
 *
 * Owned by the network thread, one per connection; not thread-safe.
 */

import { ReadAhead, type ReadAheadStats } from './read-ahead.js';

export class ConnectionScope {
  private ahead: ReadAhead | null = null;
  private closed = false;

  /** This connection's read-ahead, created on first use (see ReadAhead for the arguments). */
  readAhead(release: (worker: number, leaseId: number) => void, stats: ReadAheadStats): ReadAhead {
    if (this.ahead === null) {
      this.ahead = new ReadAhead(release, stats);
      if (this.closed) this.ahead.close();
    }
    return this.ahead;
  }

  /** The connection closed: undo what its requests left (kept reads are released). */
  close(): void {
    this.closed = true;
    this.ahead?.close();
  }
}
