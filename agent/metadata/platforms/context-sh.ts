// OpenNebula's context.sh: shell variable assignments, read as data, never run. OpenNebula
// writes KEY='value' with single quotes (a quote inside as '\''), values may span lines (several
// SSH keys). Double quotes and bare words are understood too; a value that would need the
// shell to expand something ($, `) is refused rather than guessed, and so is anything that is
// not an assignment (a command), each on its own line of the report.

export interface ContextVars {
  vars: Map<string, string>;
  problems: string[];
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function parseContextSh(text: string): ContextVars {
  const vars = new Map<string, string>();
  const problems: string[] = [];
  let i = 0;
  let line = 1;
  const n = text.length;
  const skipToLineEnd = (): void => {
    while (i < n && text[i] !== '\n') i += 1;
  };
  while (i < n) {
    const c = text[i] as string;
    if (c === '\n') { line += 1; i += 1; continue; }
    if (c === ' ' || c === '\t' || c === ';' || c === '\r') { i += 1; continue; }
    if (c === '#') { skipToLineEnd(); continue; }
    const startLine = line;
    let word = '';
    while (i < n && /[A-Za-z0-9_]/.test(text[i] as string)) word += text[i++];
    if (word === 'export' && (text[i] === ' ' || text[i] === '\t')) continue;
    if (!NAME.test(word) || text[i] !== '=') {
      problems.push(`line ${startLine}: not a variable assignment; ignored`);
      skipToLineEnd();
      continue;
    }
    i += 1;
    let value = '';
    let refused: string | null = null;
    let closed = true;
    while (i < n && !/[\s;]/.test(text[i] as string)) {
      const ch = text[i] as string;
      if (ch === "'") {
        const end = text.indexOf("'", i + 1);
        if (end < 0) { closed = false; i = n; break; }
        const part = text.slice(i + 1, end);
        line += part.split('\n').length - 1;
        value += part;
        i = end + 1;
      } else if (ch === '"') {
        i += 1;
        closed = false;
        while (i < n) {
          const d = text[i] as string;
          if (d === '"') { closed = true; i += 1; break; }
          if (d === '\\' && i + 1 < n && '"\\$`\n'.includes(text[i + 1] as string)) {
            if (text[i + 1] !== '\n') value += text[i + 1];
            else line += 1;
            i += 2;
            continue;
          }
          if (d === '$' || d === '`') refused ??= `"${d}" would need the shell to expand it`;
          if (d === '\n') line += 1;
          value += d;
          i += 1;
        }
        if (!closed) break;
      } else if (ch === '\\' && i + 1 < n) {
        if (text[i + 1] === '\n') line += 1;
        else value += text[i + 1];
        i += 2;
      } else {
        if (ch === '$' || ch === '`' || ch === '(' || ch === ')' || ch === '<' || ch === '>' || ch === '|' || ch === '&') refused ??= `"${ch}" would need the shell`;
        value += ch;
        i += 1;
      }
    }
    if (!closed) {
      problems.push(`line ${startLine}: ${word}: unterminated quote; ignored`);
      break;
    }
    if (refused) problems.push(`line ${startLine}: ${word}: ${refused}; ignored`);
    else vars.set(word, value);
    // Anything after the assignment on the same line (a command) is not data.
    while (i < n && (text[i] === ' ' || text[i] === '\t' || text[i] === '\r')) i += 1;
    if (i < n && text[i] !== '\n' && text[i] !== ';' && text[i] !== '#') {
      problems.push(`line ${line}: text after ${word}=… is not an assignment; ignored`);
      skipToLineEnd();
    }
  }
  return { vars, problems };
}
