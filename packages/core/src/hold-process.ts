let holders = 0;
let handle: ReturnType<typeof setInterval> | undefined;

/**
 * Keeps the Node.js process alive until the returned function is called. baton's background timers
 * (session renewal, expiry) never hold a process open, so a script whose only work is waiting — a blocking
 * `acquire`, a polling watch, a campaign — would otherwise exit mid-wait (code 13, unsettled top-level
 * await) during a backoff or a lock-delay pause. Calls that wait on the caller's behalf hold the process
 * the way a listening server does, and let go as soon as they settle. Reference-counted: one timer however
 * many waits are pending. The returned function is idempotent.
 */
export function holdProcess(): () => void {
  holders++;
  handle ??= setInterval(() => {}, 0x7fffffff);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    holders--;
    if (holders === 0 && handle !== undefined) {
      clearInterval(handle);
      handle = undefined;
    }
  };
}
