// Markdown tables and number formatting for the printed results and docs/benchmarks.md.

/** Formats a number with `digits` decimals and thousands separators; `–` for NaN/undefined. */
export function num(value, digits = 0) {
  if (value === undefined || value === null || !Number.isFinite(value)) return '–';
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** A figure with its spread over rounds: `1,234 (1,100–1,300)`. Omits the range for a single round. */
export function withSpread(s, digits = 0) {
  if (!s || !Number.isFinite(s.median)) return '–';
  if (s.n <= 1 || s.min === s.max) return num(s.median, digits);
  return `${num(s.median, digits)} (${num(s.min, digits)}–${num(s.max, digits)})`;
}

/** A ratio with its spread: `0.93 (0.90–0.97)`. */
export function ratio(s) {
  return withSpread(s, 2);
}

/** A percentage: `87%`. */
export function pct(value, digits = 0) {
  return Number.isFinite(value) ? `${num(value * 100, digits)}%` : '–';
}

/** Bytes as MiB with one decimal. */
export function mib(bytes, digits = 1) {
  return num(bytes / 1024 / 1024, digits);
}

/** Renders a markdown table. `columns` are header strings; `rows` arrays of cell strings. */
export function markdownTable(columns, rows) {
  const cellText = (cell) => String(cell ?? '').replaceAll('|', '\\|');
  const lines = [
    `| ${columns.map(cellText).join(' | ')} |`,
    `|${columns.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`,
    ...rows.map((row) => `| ${row.map(cellText).join(' | ')} |`),
  ];
  return lines.join('\n');
}
