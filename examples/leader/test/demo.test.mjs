// Runs the demo end to end (built packages, real child processes, the Consul-compatible test server) and
// checks that leadership moved after the leader was killed and again after the next one resigned.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

function runDemo(env) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [fileURLToPath(new URL('../run-demo.mjs', import.meta.url))], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk) => {
      output += chunk;
    });
    child.stderr.on('data', (chunk) => {
      output += chunk;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 100_000);
    child.once('error', reject);
    // 'close' waits for the output's last lines; 'exit' can come first.
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

it('hands leadership over after the leader is killed, and again after the next one resigns', async () => {
  const { code, output } = await runDemo({ KILL_AFTER_MS: '1500', HANDOVER_TIMEOUT_MS: '20000' });
  const context = `demo output:\n${output}`;
  expect(code, context).toBe(0);

  const first = output.match(/first leader: (\S+) \(term (\d+)\)/);
  const killed = output.match(/killing the leader (\S+) \(pid (\d+)\)/);
  const crash = output.match(/crash handover: (\S+) leads term (\d+), ([\d.]+) s after the kill/);
  const resign = output.match(/resign handover: (\S+) leads term (\d+), ([\d.]+) s after SIGTERM/);
  expect(first && killed && crash && resign, context).toBeTruthy();

  // A new leader, with a higher term, within 2×TTL + lock-delay (3 s here) plus generous slack.
  expect(crash[1], context).not.toBe(killed[1]);
  expect(Number(crash[2]), context).toBeGreaterThan(Number(first[2]));
  expect(Number(crash[3]), context).toBeLessThan(15);
  // A resignation hands over within a watch round trip: far below the TTL, bounded generously here.
  expect(resign[1], context).not.toBe(crash[1]);
  expect(Number(resign[2]), context).toBeGreaterThan(Number(crash[2]));
  expect(Number(resign[3]), context).toBeLessThan(3);

  // Each candidate announced its own leadership, the observer saw both handovers, everyone stopped.
  for (const name of [crash[1], resign[1]])
    expect(output, context).toMatch(new RegExp(`${name}\\s+\\| LEADING term`));
  expect(output, context).toMatch(new RegExp(`observer\\s+\\| leader is ${crash[1]} \\(term ${crash[2]},`));
  expect(output, context).toMatch(new RegExp(`observer\\s+\\| leader is ${resign[1]} \\(term ${resign[2]},`));
  expect(output, context).toMatch(/observer\s+\| stopped/);
  expect(output, context).toMatch(/demo\s+\| done/);
});
