/** A parse error in outside input, with the file and 1-based line it was found on. */
export class ParseError extends Error {
  constructor(readonly file: string, readonly line: number, readonly reason: string) {
    super(`${file}:${line}: ${reason}`);
    this.name = 'ParseError';
  }
}
