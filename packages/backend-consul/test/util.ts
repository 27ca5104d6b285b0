/** Waits until `signal` aborts and resolves its reason; rejects after `timeoutMs`. */
export function abortedWithin(signal: AbortSignal, timeoutMs: number, what = 'signal'): Promise<unknown> {
  if (signal.aborted) return Promise.resolve(signal.reason);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${what} did not abort within ${timeoutMs} ms`)),
      timeoutMs,
    );
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve(signal.reason);
      },
      { once: true },
    );
  });
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `probe` until it returns true; rejects after `timeoutMs`. */
export async function until(
  probe: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await probe())) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(10);
  }
}

/** The rejection of `promise` (fails when it resolves). */
export async function rejectionOf(
  promise: Promise<unknown>,
): Promise<{ code?: string; message: string; cause?: unknown }> {
  try {
    await promise;
  } catch (error) {
    return error as { code?: string; message: string; cause?: unknown };
  }
  throw new Error('expected a rejection');
}
