import { createHash, timingSafeEqual } from 'node:crypto';

/** Shortest token accepted: a guessable token would make the console's actions guessable too. */
export const MIN_TOKEN_LENGTH = 16;

/** What an `Authorization` header is worth. */
export type Authorization = 'ok' | 'read-only' | 'missing' | 'wrong';

/**
 * Checks `Authorization: Bearer <token>` against the console's token. Both sides are hashed first, so the
 * comparison is constant-time whatever their lengths. Without a token the console is read-only.
 */
export class TokenCheck {
  readonly #digest: Buffer | undefined;

  constructor(token: string | undefined) {
    if (token !== undefined && token.length < MIN_TOKEN_LENGTH) {
      throw new RangeError(
        `BATON_CONSOLE_TOKEN must be at least ${MIN_TOKEN_LENGTH} characters (e.g. \`openssl rand -hex 24\`)`,
      );
    }
    this.#digest = token === undefined ? undefined : digest(token);
  }

  get readOnly(): boolean {
    return this.#digest === undefined;
  }

  check(header: string | undefined): Authorization {
    if (!this.#digest) return 'read-only';
    const match = /^Bearer ([^\s]+)$/.exec(header ?? '');
    if (!match) return 'missing';
    return timingSafeEqual(digest(match[1]!), this.#digest) ? 'ok' : 'wrong';
  }
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}
