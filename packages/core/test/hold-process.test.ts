import { describe, expect, it } from 'vitest';
import { processHeld } from '../src/hold-process.js';
import {
  AbstractLockSession,
  type Acquisition,
  holdProcess,
  type ManagedLease,
  MemoryLockProvider,
  pollingWatch,
  systemClock,
} from '../src/index.js';

// Whether baton holds the process is read from its one shared timer: counting the process's timers
// (process.getActiveResourcesInfo) also counts the test runner's own, which come and go under load.

describe('waiting calls keep the process alive; background timers do not', () => {
  it('a blocking acquire holds the process while it waits and lets go after', async () => {
    const provider = new MemoryLockProvider({ ttlMs: 5_000 });
    const [a, b] = [await provider.openSession(), await provider.openSession()];
    expect(processHeld()).toBe(false);
    const held = await a.tryAcquire('hold/k');
    expect(processHeld()).toBe(false);
    const waiting = b.acquire('hold/k');
    await new Promise((r) => setImmediate(r));
    expect(processHeld()).toBe(true);
    await held!.release();
    await waiting;
    expect(processHeld()).toBe(false);
    await provider.close();
  });

  it('a polling watch holds the process until the consumer stops', async () => {
    const controller = new AbortController();
    const iterator = pollingWatch(async () => null, { signal: controller.signal, pollIntervalMs: 20 })[
      Symbol.asyncIterator
    ]();
    await iterator.next();
    expect(processHeld()).toBe(true);
    controller.abort();
    await iterator.return?.(undefined);
    expect(processHeld()).toBe(false);
  });
});

describe('a running worker keeps the process alive between passes', () => {
  it('holds a referenced timer while run() is pending and lets go after stop()', async () => {
    const { Worker, MemoryTaskSource } = await import('../src/index.js');
    const locks = new MemoryLockProvider({ ttlMs: 5_000 });
    expect(processHeld()).toBe(false);
    const worker = new Worker({
      locks,
      source: new MemoryTaskSource(),
      handler: async () => undefined,
      schedule: { every: 3_600_000 },
    });
    const running = worker.run();
    await new Promise((r) => setTimeout(r, 50));
    expect(processHeld()).toBe(true);
    await worker.stop();
    await running;
    expect(processHeld()).toBe(false);
    await locks.close();
  });
});

/** A backend session whose every operation waits until the test lets it go (a request being retried). */
function gate(): { promise: Promise<void>; resolve: () => void } {
  let resolve = () => {};
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

class SlowSession extends AbstractLockSession<null> {
  gate = gate();
  constructor() {
    super({ id: 'slow', ttlMs: 5_000, clock: systemClock, watch: async function* () {}, nativeWatch: false });
  }
  protected async acquireOnce(): Promise<Acquisition<null>> {
    await this.gate.promise;
    return { fence: 1, value: undefined, state: null };
  }
  protected async releaseOnce(_lease: ManagedLease<null>): Promise<boolean> {
    await this.gate.promise;
    return true;
  }
  protected async publishOnce(): Promise<void> {
    await this.gate.promise;
  }
  protected async endSession(): Promise<void> {
    await this.gate.promise;
  }
}

describe('calls made for the caller hold the process until they settle', () => {
  it('tryAcquire, publish, release and destroy of a backend session each hold it while pending', async () => {
    const session = new SlowSession();
    const pending = async <T>(call: () => Promise<T>): Promise<T> => {
      session.gate = gate();
      const result = call();
      await new Promise((r) => setImmediate(r));
      expect(processHeld()).toBe(true);
      session.gate.resolve();
      const value = await result;
      expect(processHeld()).toBe(false);
      return value;
    };
    const lease = await pending(() => session.tryAcquire('hold/slow'));
    expect(lease?.fence).toBe(1);
    await pending(() => lease!.publish('v'));
    expect(await pending(() => lease!.release())).toBe(true);
    await pending(() => session.destroy());
  });

  it('holds are counted: the process is held until the last one lets go, and a release is idempotent', () => {
    expect(processHeld()).toBe(false);
    const first = holdProcess();
    const second = holdProcess();
    expect(processHeld()).toBe(true);
    first();
    first();
    expect(processHeld()).toBe(true);
    second();
    expect(processHeld()).toBe(false);
  });
});
