// The demo is read on a terminal: lines fit 80 columns, and colour marks what changed, only
// on a terminal and never with NO_COLOR set (https://no-color.org).

export const WIDTH = 80;

/** Breaks a line at spaces to fit `width`, continuing with `indent`; a longer word is cut. */
export function fit(line: string, width = WIDTH, indent = '    '): string[] {
  if (line.length <= width) return [line];
  const out: string[] = [];
  let rest = line;
  let prefix = '';
  while (prefix.length + rest.length > width) {
    const room = width - prefix.length;
    const space = rest.lastIndexOf(' ', room);
    const cut = space > room / 3 ? space : room;
    out.push(`${prefix}${rest.slice(0, cut)}`.trimEnd());
    rest = rest.slice(cut).trimStart();
    prefix = indent;
  }
  if (rest) out.push(`${prefix}${rest}`);
  return out;
}

/** A long key in a block shown on screen (not parsed there): its start and end, elided. */
export function elide(line: string, width = WIDTH): string {
  if (line.length <= width) return line;
  const keep = width - 1;
  return `${line.slice(0, Math.ceil(keep * 0.7))}…${line.slice(line.length - Math.floor(keep * 0.3))}`;
}

export function colourWanted(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  return stream.isTTY === true && (env.NO_COLOR ?? '') === '' && env.TERM !== 'dumb';
}

export function paint(on: boolean, code: 'green' | 'yellow' | 'red' | 'bold', text: string): string {
  if (!on) return text;
  const sgr = { green: 32, yellow: 33, red: 31, bold: 1 }[code];
  return `\x1b[${sgr}m${text}\x1b[0m`;
}
