import { describe, expect, it, vi } from 'vitest';
import { LazyAbort, onSignalAbort } from '../../src/worker/lazy-abort.js';

describe('LazyAbort', () => {
  it('makes no signal until asked, and a signal made after the abort is aborted with the same reason', () => {
    const abort = new LazyAbort();
    const reason = new Error('lease lost');
    abort.abort(reason);
    abort.abort(new Error('later'));
    expect(abort.aborted).toBe(true);
    expect(abort.reason).toBe(reason);
    expect(abort.signal.aborted).toBe(true);
    expect(abort.signal.reason).toBe(reason);
  });

  it('aborts a signal made before the abort, and calls each listener once', () => {
    const abort = new LazyAbort();
    const signal = abort.signal;
    const seen: string[] = [];
    signal.addEventListener('abort', () => seen.push('signal'));
    abort.onAbort(() => seen.push('first'));
    const remove = abort.onAbort(() => seen.push('removed'));
    remove();
    abort.abort('stop');
    abort.abort('again');
    abort.onAbort(() => seen.push('after'));
    expect(seen).toEqual(['signal', 'first', 'after']);
    expect(signal.reason).toBe('stop');
  });
});

describe('onSignalAbort', () => {
  it('watches one signal with a single event listener however many tasks watch it', () => {
    const controller = new AbortController();
    const add = vi.spyOn(controller.signal, 'addEventListener');
    const calls: number[] = [];
    const removers = Array.from({ length: 100 }, (_, i) =>
      onSignalAbort(controller.signal, () => calls.push(i)),
    );
    for (const remove of removers.slice(0, 98)) remove();
    controller.abort('lost');
    expect(add).toHaveBeenCalledTimes(1);
    expect(calls).toEqual([98, 99]);
  });

  it('calls at once for a signal that already aborted, and a watcher added after an abort still fires', () => {
    const controller = new AbortController();
    let first = 0;
    onSignalAbort(controller.signal, () => first++);
    controller.abort();
    let late = 0;
    onSignalAbort(controller.signal, () => late++);
    expect([first, late]).toEqual([1, 1]);
  });
});
