let holders = 0;
let handle: ReturnType<typeof setInterval> | undefined;

/**
 * Keeps the Node.js process alive until the returned function is called. baton's background timers
 * (session renewal, expiry) never hold a process open, so a script whose only work is waiting — a blocking
 * `acquire`, a polling watch, a campaign, a request being retried after a transport error — would otherwise
 * exit mid-wait (code 13, unsettled top-level await) during a backoff or a lock-delay pause. Calls that work
 * on the caller's behalf hold the process the way a listening server does, and let go as soon as they
 * settle. Reference-counted: one timer however many calls are pending, kept (unreferenced) between holds so
 * that a hold costs no timer setup. The returned function is idempotent.
 */
export function holdProcess(): () => void {
  if (holders++ === 0) {
    handle ??= setInterval(() => {}, 0x7fffffff);
    handle.ref();
  }
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (--holders === 0) handle?.unref();
  };
}

/**
 * Whether a hold is in force: the shared timer exists and is referenced. For tests, which cannot count the
 * process's timers reliably (the test runner's own come and go).
 */
export function processHeld(): boolean {
  return holders > 0 && handle?.hasRef() === true;
}

/** Runs `work` while holding the process (see {@link holdProcess}). */
export async function whileHolding<T>(work: () => Promise<T>): Promise<T> {
  const release = holdProcess();
  try {
    return await work();
  } finally {
    release();
  }
}
