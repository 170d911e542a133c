import { didYouMean } from '../config/validator.js';

/**
 * One operator line from a node:util parseArgs error: its first sentence (Node appends advice
 * about "--" for positionals), with a did-you-mean for an unknown option.
 */
export function flagError(err: unknown, options: readonly string[]): string {
  const message = err instanceof Error ? err.message : String(err);
  const unknown = /Unknown option '(--?[^']+)'/.exec(message)?.[1];
  const hint = unknown ? didYouMean(unknown.replace(/^-+/, ''), options).replace('"', '"--') : '';
  return `${message.replace(/\. To specify a positional argument[^]*$/, '').replace(/\.$/, '')}${hint}`;
}
