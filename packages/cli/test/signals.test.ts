import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { ReportedFailure } from '../src/classify-errors.js';
import { exitCodeOfSignal, onStopSignal } from '../src/signals.js';

class FakeSignals extends EventEmitter {
  readonly exits: number[] = [];
  exit(code: number): void {
    this.exits.push(code);
  }
  send(signal: NodeJS.Signals): void {
    this.emit(signal, signal);
  }
}

describe('onStopSignal (leader watch, demo): core escalation with two steps', () => {
  it('step 1: the first signal calls stop and is remembered for the exit code', () => {
    const target = new FakeSignals();
    const stops: string[] = [];
    const subscription = onStopSignal((signal) => stops.push(signal), target);
    target.send('SIGINT');
    expect(stops).toEqual(['SIGINT']);
    expect(subscription.received).toBe('SIGINT');
    expect(target.exits).toEqual([]);
    expect(() => subscription.exitIfSignalled()).toThrow(ReportedFailure);
    try {
      subscription.exitIfSignalled();
    } catch (error) {
      expect((error as ReportedFailure).exitCode).toBe(130);
    }
    subscription.dispose();
  });

  it('step 2: a second signal exits at once with its code, without calling stop again', () => {
    const target = new FakeSignals();
    const stops: string[] = [];
    const subscription = onStopSignal((signal) => stops.push(signal), target);
    target.send('SIGTERM');
    target.send('SIGTERM');
    expect(stops).toEqual(['SIGTERM']);
    expect(target.exits).toEqual([143]);
    subscription.dispose();
    expect(target.listenerCount('SIGTERM') + target.listenerCount('SIGINT')).toBe(0);
  });

  it('no signal: exitIfSignalled does nothing', () => {
    const target = new FakeSignals();
    const subscription = onStopSignal(() => {}, target);
    expect(() => subscription.exitIfSignalled()).not.toThrow();
    subscription.dispose();
  });

  it('exit codes: 130 for SIGINT, 143 for SIGTERM', () => {
    expect([exitCodeOfSignal('SIGINT'), exitCodeOfSignal('SIGTERM')]).toEqual([130, 143]);
  });
});
