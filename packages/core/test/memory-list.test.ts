import { describe, expect, it } from 'vitest';
import { ManualClock, MemoryLockStore } from '../src/index.js';
import { compareKeys, SortedKeys } from '../src/memory/key-order.js';

describe('MemoryLockStore.list', () => {
  it('lists held keys under a prefix in code-unit order, as Consul and DynamoDB do', () => {
    const store = new MemoryLockStore({ clock: new ManualClock() });
    const session = store.createSession({ ttlMs: 10_000, lockDelayMs: 0 });
    // Upper case sorts before lower case by code units (localeCompare would interleave them), '/' before
    // digits, '10' before '9'.
    const keys = ['p/b', 'p/B', 'p/a/1', 'p/9', 'p/10', 'p.x', 'p', 'q/1', 'o/1', 'p/é'];
    for (const key of keys) expect(store.acquire(session, key, {})).not.toBeNull();
    expect(store.list('p/').map((h) => h.key)).toEqual(['p/10', 'p/9', 'p/B', 'p/a/1', 'p/b', 'p/é']);
    expect(store.list().map((h) => h.key)).toEqual([...keys].sort(compareKeys));
    expect(store.list('r/')).toEqual([]);
  });

  it('follows keys added, released, deleted and taken again without listing any twice', () => {
    const store = new MemoryLockStore({ clock: new ManualClock() });
    const a = store.createSession({ ttlMs: 10_000, lockDelayMs: 0 });
    const fences = new Map<string, number>();
    for (let n = 0; n < 50; n++) fences.set(`b/${n}`, store.acquire(a, `b/${n}`, {})!.fence);
    expect(store.list('b/')).toHaveLength(50);
    expect(store.release(a, 'b/7', fences.get('b/7')!)).toBe(true);
    store.deleteKey('b/8');
    store.deleteKey('b/9');
    expect(store.list('b/').map((h) => h.key)).not.toContain('b/7');
    expect(store.list('b/').map((h) => h.key)).not.toContain('b/8');
    expect(store.acquire(a, 'b/8', {})).not.toBeNull();
    expect(store.acquire(a, 'b/7', {})).not.toBeNull();
    // Deleted and taken again before any listing: stored once, listed once.
    store.deleteKey('b/10');
    expect(store.acquire(a, 'b/10', {})).not.toBeNull();
    expect(store.acquire(a, 'b/9', {})).not.toBeNull();
    store.acquire(a, 'b/50', {});
    const listed = store.list('b/').map((h) => h.key);
    expect(listed).toHaveLength(51);
    expect(new Set(listed).size).toBe(51);
    expect(listed).toEqual([...listed].sort(compareKeys));
  });
});

describe('SortedKeys', () => {
  it('merges keys added in any order and drops deleted ones at the next read', () => {
    const keys = new SortedKeys();
    const present = new Set<string>();
    const add = (k: string) => {
      present.add(k);
      keys.add(k);
    };
    for (const k of ['c', 'a', 'b']) add(k);
    expect([...keys.withPrefix('', (k) => present.has(k))]).toEqual(['a', 'b', 'c']);
    for (const k of ['ab', 'aa', 'd']) add(k);
    present.delete('b');
    keys.deleted();
    expect([...keys.withPrefix('', (k) => present.has(k))]).toEqual(['a', 'aa', 'ab', 'c', 'd']);
    expect([...keys.withPrefix('a', (k) => present.has(k))]).toEqual(['a', 'aa', 'ab']);
    add('a');
    expect([...keys.withPrefix('a', (k) => present.has(k))]).toEqual(['a', 'aa', 'ab']);
  });
});
