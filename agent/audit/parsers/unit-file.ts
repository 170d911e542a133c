// systemd unit files (systemd.syntax(7)), only as far as the audit needs them: sections,
// "Key=Value" assignments with their line numbers, backslash continuations joined, comments
// ("#" or ";" at the start of a line) skipped.

export interface UnitAssignment {
  section: string;
  key: string;
  value: string;
  /** 1-based line where the assignment starts. */
  line: number;
}

export function parseUnitFile(text: string): UnitAssignment[] {
  const out: UnitAssignment[] = [];
  const lines = text.split('\n');
  let section = '';
  for (let i = 0; i < lines.length; i += 1) {
    const start = i;
    let raw = (lines[i] as string).replace(/\r$/, '');
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#') || trimmed.startsWith(';')) continue;
    const header = /^\[([^\]]+)\]$/.exec(trimmed);
    if (header) {
      section = header[1] as string;
      continue;
    }
    while (raw.endsWith('\\') && i + 1 < lines.length) {
      i += 1;
      const next = (lines[i] as string).replace(/\r$/, '');
      if (/^\s*[#;]/.test(next)) continue; // comments inside a continuation are skipped, as systemd does
      raw = `${raw.slice(0, -1)} ${next.trim()}`;
    }
    const eq = raw.indexOf('=');
    if (eq <= 0) continue;
    out.push({ section, key: raw.slice(0, eq).trim(), value: raw.slice(eq + 1).trim(), line: start + 1 });
  }
  return out;
}

export function unitValues(assignments: readonly UnitAssignment[], section: string, key: string): UnitAssignment[] {
  return assignments.filter((a) => a.section === section && a.key === key);
}
