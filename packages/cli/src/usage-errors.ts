import type { CommanderError } from 'commander';
import { UsageError } from './classify-errors.js';

/**
 * A commander parse error (unknown flag or command, bad or missing value, missing command) as a
 * {@link UsageError}: the message without commander's `error: ` prefix, and the flag, argument or command at
 * fault as `field` when the message names one.
 */
export function usageErrorOf(error: CommanderError): UsageError {
  if (error.code === 'commander.help') {
    return new UsageError('no command given. Fix: name a command (run with --help to list them).', {
      field: '<command>',
    });
  }
  const message = error.message.replace(/^error: /, '');
  // Not kept as `cause`: commander's error says the same again, with its `error: ` prefix.
  return new UsageError(message, fieldOf(error.code, message));
}

function fieldOf(code: string, message: string): { field?: string } {
  const quoted = /'([^']*)'/.exec(message)?.[1];
  if (quoted === undefined) return {};
  switch (code) {
    case 'commander.unknownCommand':
      return { field: '<command>' };
    case 'commander.missingArgument':
      return { field: `<${quoted}>` };
    case 'commander.invalidArgument': {
      // "option '-n, --count <n>' argument '0' is invalid" or "command-argument value 'x' is invalid for
      // argument 'kind'".
      if (message.startsWith('option ')) return { field: longFlag(quoted) };
      const argument = /for argument '([^']*)'/.exec(message)?.[1];
      return argument ? { field: `<${argument}>` } : {};
    }
    default:
      // unknownOption, optionMissingArgument, conflictingOption, invalidOptionArgument, ...
      return /^-/.test(quoted) ? { field: longFlag(quoted) } : {};
  }
}

/** `--count` from `-n, --count <n>`; the flag itself when there is no long form. */
function longFlag(flags: string): string {
  return /--[\w-]+/.exec(flags)?.[0] ?? flags.split(/[ ,]/)[0]!;
}
