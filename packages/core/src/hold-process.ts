/**
 * Keeps the Node.js process alive until the returned function is called. baton's own timers never hold a
 * process open (they are unref'd), so a script whose only work is `await runWhileLeader(...)` or a pending
 * campaign would otherwise exit mid-wait (code 13, unsettled top-level await) during a backoff or a
 * lock-delay pause. Election calls that wait on the caller's behalf hold the process the way a listening
 * server does, and let go as soon as they settle.
 */
export function holdProcess(): () => void {
  const handle = setInterval(() => {}, 0x7fffffff);
  return () => clearInterval(handle);
}
