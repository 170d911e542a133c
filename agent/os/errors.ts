/** An error whose message is written for the operator: no stack trace is printed for it. */
export class ImprintError extends Error {
  constructor(message: string, readonly code: 'usage' | 'config' | 'unsafe-path' | 'command' | 'task' = 'task') {
    super(message);
    this.name = 'ImprintError';
  }
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
