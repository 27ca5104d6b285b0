/** Code-unit order of keys: the order Consul and DynamoDB list keys in, and so does the memory backend. */
export function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The keys of a store in {@link compareKeys} order, brought up to date lazily: keys added or deleted since the
 * last read are merged in (or dropped) on the next read. Adding a key costs O(1), so a store taking a new key
 * per task pays nothing for it; a listing after no change walks only the keys under its prefix (no sort), so
 * balancing rounds that list the same few thousand keys again and again stay cheap.
 */
export class SortedKeys {
  #sorted: string[] = [];
  #added: string[] = [];
  #deleted = false;

  add(key: string): void {
    this.#added.push(key);
  }

  /** A key was deleted from the store; `exists` (at the next read) says which keys remain. */
  deleted(): void {
    this.#deleted = true;
  }

  /** Keys starting with `prefix`, in order; `exists` tells which keys the store still has. */
  *withPrefix(prefix: string, exists: (key: string) => boolean): Generator<string> {
    const keys = this.#current(exists);
    for (let i = lowerBound(keys, prefix); i < keys.length && keys[i]!.startsWith(prefix); i++) {
      yield keys[i]!;
    }
  }

  #current(exists: (key: string) => boolean): string[] {
    if (this.#added.length === 0 && !this.#deleted) return this.#sorted;
    const added = this.#added.sort(compareKeys);
    const merged: string[] = [];
    let i = 0;
    let j = 0;
    while (i < this.#sorted.length || j < added.length) {
      const next =
        j >= added.length || (i < this.#sorted.length && compareKeys(this.#sorted[i]!, added[j]!) <= 0)
          ? this.#sorted[i++]!
          : added[j++]!;
      if (merged[merged.length - 1] !== next && exists(next)) merged.push(next);
    }
    this.#sorted = merged;
    this.#added = [];
    this.#deleted = false;
    return merged;
  }
}

/** The first index whose key is ≥ `key`. */
function lowerBound(keys: readonly string[], key: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
