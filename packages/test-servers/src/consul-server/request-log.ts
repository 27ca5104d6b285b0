/** One received request. `at` is the server clock's monotonic milliseconds. */
export interface RequestLogEntry {
  readonly method: string;
  /** The decoded path, without the query string. */
  readonly path: string;
  /** The counter key, e.g. `PUT /v1/session/renew`. */
  readonly pattern: string;
  /** The raw query string, without `?` (`''` when none). */
  readonly query: string;
  readonly at: number;
}

/** Counts every request the server receives (including failed, faulted and held ones). */
export class RequestLog {
  #entries: RequestLogEntry[] = [];
  #counts = new Map<string, number>();

  record(entry: RequestLogEntry): void {
    this.#entries.push(entry);
    this.#counts.set(entry.pattern, (this.#counts.get(entry.pattern) ?? 0) + 1);
  }

  total(): number {
    return this.#entries.length;
  }

  /** Requests counted under `pattern` (`"PUT /v1/txn"`); the method is case-insensitive, a trailing `/` ignored. */
  count(pattern: string): number {
    const trimmed = pattern.trim();
    const space = trimmed.indexOf(' ');
    const normalised =
      space === -1 ? trimmed : `${trimmed.slice(0, space).toUpperCase()} ${trimmed.slice(space + 1).trim()}`;
    const key = normalised.length > 1 && normalised.endsWith('/') ? normalised.slice(0, -1) : normalised;
    return this.#counts.get(key) ?? 0;
  }

  reset(): void {
    this.#entries = [];
    this.#counts.clear();
  }

  log(): ReadonlyArray<RequestLogEntry> {
    return [...this.#entries];
  }
}
