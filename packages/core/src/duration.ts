const UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

/**
 * Parses a duration into milliseconds: a number (milliseconds), a numeric string (milliseconds), or a string
 * of number+unit parts such as `15s`, `500ms`, `1m30s`, `1.5h`. Returns `undefined` when it cannot.
 */
export function parseDuration(input: unknown): number | undefined {
  if (typeof input === 'number') return Number.isFinite(input) && input >= 0 ? input : undefined;
  if (typeof input !== 'string') return undefined;
  const text = input.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text);
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  let total = 0;
  let consumed = 0;
  for (let match = re.exec(text); match; match = re.exec(text)) {
    total += Number(match[1]) * UNITS[match[2]!]!;
    consumed = re.lastIndex;
  }
  return consumed > 0 && consumed === text.length ? total : undefined;
}

/** Formats milliseconds the way Go's time.Duration would (`15s`, `1500ms`). */
export function formatDuration(ms: number): string {
  if (ms % 1_000 === 0) return `${ms / 1_000}s`;
  return `${Math.round(ms)}ms`;
}
