// Starts the Consul-compatible test server from @baton/test-servers and keeps it running until Ctrl-C.
// It accepts sub-second session TTLs (real Consul's floor is 10s), which keeps the demo's handovers short.
import { startConsulTestServer } from '@baton/test-servers/consul-server';
import { logger, shutdownSignal } from './shared.mjs';

const log = logger('consul');
const port = Number(process.env.PORT ?? 8500);
const server = await startConsulTestServer({ port, sessionTtlMinMs: 100 });
log(`Consul-compatible test server on http://${server.host}:${server.port}`);
log(`export CONSUL_HTTP_ADDR=http://${server.host}:${server.port}`);
const signal = shutdownSignal();
await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
await server.close();
