#!/usr/bin/env node
import { main } from './program.js';

// `baton tasks list | head`: a reader that closes the pipe early is not an error of ours.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw error;
  });
}

// The AWS SDK warns on every start under Node 20, which baton supports.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

// baton's clock does not keep the process alive (its timers are unref'd), so a command waiting only on a
// retry backoff would let Node exit mid-command (status 13). Hold the event loop open until main() is done.
const alive = setInterval(() => {}, 1 << 30);
try {
  process.exitCode = await main(process.argv);
} finally {
  clearInterval(alive);
}
