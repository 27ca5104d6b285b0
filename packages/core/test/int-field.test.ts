import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { intField, parseConfig } from '../src/index.js';

const schema = z.object({ attempts: intField({ min: 1, max: 1_000_000 }) });
const fields = { attempts: { env: 'ATTEMPTS', hint: 'a whole number from 1 to 1000000' } };

function problem(value: string): string {
  try {
    parseConfig(schema, { attempts: value }, { backend: 'test', fields, fromEnv: true });
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error(`'${value}' was accepted`);
}

describe('intField: what a bad whole number is told', () => {
  it.each([
    ['99999999999', 'out of range: expected a whole number from 1 to 1000000'],
    ['99999999999999999999', 'out of range: expected a whole number from 1 to 1000000'],
    ['0', 'out of range: expected a whole number from 1 to 1000000'],
    ['1.5', 'expected a whole number ('],
    ['many', 'expected a whole number ('],
  ])('%s: %s', (value, expected) => {
    const message = problem(value);
    expect(message).toContain(`ATTEMPTS: ${expected}`);
    expect(message.split('\n').filter((line) => line.includes('ATTEMPTS:'))).toHaveLength(1);
  });
});
