import { randomInt } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { KeyCodec } from '../src/keys.js';

/** Consul's key alphabet, no leading '/', no '.' or '..' segment (shared/consul-api.md). */
function isConsulSafe(key: string): boolean {
  return (
    /^[A-Za-z0-9,\-_./]*$/.test(key) &&
    !key.startsWith('/') &&
    !key.split('/').some((segment) => segment === '.' || segment === '..')
  );
}

function randomKey(): string {
  const pool = [
    'a',
    'Z',
    '0',
    '/',
    '.',
    '..',
    ',',
    '-',
    '_',
    ' ',
    ':',
    '*',
    '?',
    '#',
    '%',
    'é',
    '猫',
    '😀',
    '\n',
    '\\',
    '+',
    '~',
  ];
  const length = 1 + randomInt(24);
  let key = '';
  for (let i = 0; i < length; i++) key += pool[randomInt(pool.length)];
  return key;
}

describe('KeyCodec', () => {
  const codec = new KeyCodec('baton/');

  it('keeps readable ids readable', () => {
    expect(codec.encode('task/42')).toBe('baton/task/42');
    expect(codec.encode('job-7_x.y')).toBe('baton/job-7_x.y');
  });

  it('escapes everything outside the alphabet as UTF-8 bytes after a comma', () => {
    expect(codec.encode('task 42')).toBe('baton/task,2042');
    expect(codec.encode('a,b')).toBe('baton/a,2Cb');
    expect(codec.encode('é')).toBe('baton/,C3,A9');
    expect(codec.encode('😀')).toBe('baton/,F0,9F,98,80');
  });

  it('never produces dot segments or a leading slash', () => {
    expect(codec.encode('..')).toBe('baton/,2E.');
    expect(codec.encode('a/../b')).toBe('baton/a/,2E./b');
    expect(codec.encode('./x')).toBe('baton/,2E/x');
    expect(codec.encode('x.y/.hidden')).toBe('baton/x.y/,2Ehidden');
    const bare = new KeyCodec('');
    expect(bare.encode('/abs')).toBe(',2Fabs');
    expect(bare.encode('..')).toBe(',2E.');
    expect(bare.decode(',2Fabs')).toBe('/abs');
  });

  it('round-trips arbitrary keys, always within Consul’s alphabet', () => {
    for (const prefix of ['baton/', '', 'team.a/locks/', 'x']) {
      const c = new KeyCodec(prefix);
      for (let i = 0; i < 2_000; i++) {
        const key = randomKey();
        const encoded = c.encode(key);
        expect(isConsulSafe(encoded), `${JSON.stringify(key)} → ${encoded}`).toBe(true);
        expect(c.decode(encoded)).toBe(key);
      }
    }
  });

  it('is injective: distinct keys never share an encoding', () => {
    const seen = new Map<string, string>();
    for (let i = 0; i < 5_000; i++) {
      const key = randomKey();
      const encoded = codec.encode(key);
      const before = seen.get(encoded);
      if (before !== undefined) expect(before).toBe(key);
      seen.set(encoded, key);
    }
  });

  it('maps a key prefix to a prefix of the encoded keys (one ?recurse per list)', () => {
    for (let i = 0; i < 2_000; i++) {
      const key = randomKey();
      const cut = randomInt(key.length + 1);
      const prefix = key.slice(0, cut);
      // Cutting inside a surrogate pair makes a prefix no key can be listed by; skip those.
      if (/[\uD800-\uDBFF]$/.test(prefix)) continue;
      expect(codec.encode(key).startsWith(codec.encodePrefix(prefix))).toBe(true);
    }
  });

  it('rejects what it did not produce when decoding', () => {
    expect(codec.decode('other/x')).toBeUndefined();
    expect(codec.decode('baton/a b')).toBeUndefined();
    expect(codec.decode('baton/,2')).toBeUndefined();
    expect(codec.decode('baton/,zz')).toBeUndefined();
    expect(codec.decode('baton/,41')).toBeUndefined(); // 'A' must be literal: not the canonical form
    expect(codec.decode('baton/,FF')).toBeUndefined(); // not UTF-8
    expect(codec.decode('baton/..')).toBeUndefined();
  });

  it('rejects lone surrogates and invalid prefixes with INVALID_ARGUMENT', () => {
    expect(() => codec.encode('a\uD800b')).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    for (const bad of ['/baton/', 'a b/', 'x/../', '.hidden/', 'a,b/']) {
      expect(() => new KeyCodec(bad), bad).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    }
  });
});
