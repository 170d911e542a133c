import { isMap, isScalar, isSeq, type LineCounter, type Node as YamlNode, type Pair, type YAMLMap } from 'yaml';

// Checks YAML nodes against what the config allows, collecting every problem with its
// file:line:col so one run reports them all, in the order they stand in the file.

export function levenshtein(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i += 1) {
    let prev = row[0] as number;
    row[0] = i;
    for (let j = 1; j <= b.length; j += 1) {
      const cur = row[j] as number;
      row[j] = Math.min(cur + 1, (row[j - 1] as number) + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length] as number;
}

export function didYouMean(word: string, choices: readonly string[]): string {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const choice of choices) {
    const d = levenshtein(word.toLowerCase(), choice.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [choice, d];
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? ` (did you mean "${best}"?)` : '';
}

export class Validator {
  private readonly found: { offset: number; text: string }[] = [];
  constructor(private readonly file: string, private readonly lines: LineCounter, private readonly sections: Record<string, readonly string[]> = {}) {}

  /** "; it belongs under host_keys" for a key that is another section's (or a section's own name). */
  private wrongLevel(key: string, where: string): string {
    if (where !== 'the config' && key in this.sections) return `; ${key} is a top-level section, not part of ${where}`;
    const homes = Object.entries(this.sections).filter(([section, keys]) => section !== where && keys.includes(key)).map(([section]) => section);
    return homes.length > 0 ? `; ${key} belongs under ${homes.join(' or ')}` : '';
  }

  /** Every problem, in the order they stand in the file. */
  get problems(): string[] {
    return [...this.found].sort((a, b) => a.offset - b.offset).map((p) => p.text);
  }

  /** "file:line:col" of a node, for messages given later (sshd's verdict on a setting). */
  where(node: YamlNode | null | undefined): string {
    const { line, col } = this.lines.linePos(node?.range?.[0] ?? 0);
    return `${this.file}:${line}:${col}`;
  }

  at(node: YamlNode | null | undefined, message: string): void {
    const offset = node?.range?.[0] ?? 0;
    const { line, col } = this.lines.linePos(offset);
    this.found.push({ offset, text: `${this.file}:${line}:${col}: ${message}` });
  }

  /** The pairs of a mapping node, with unknown keys reported against the allowed ones. */
  fields(node: YamlNode | null | undefined, where: string, allowed: readonly string[]): Map<string, YamlNode | null> {
    const out = new Map<string, YamlNode | null>();
    // A section whose settings are all commented out ("host_keys:" alone) means the defaults.
    if (isScalar(node) && node.value === null) return out;
    if (!isMap(node)) {
      this.at(node, `${where} must be a mapping`);
      return out;
    }
    for (const pair of (node as YAMLMap).items as Pair<YamlNode, YamlNode | null>[]) {
      const key = isScalar(pair.key) ? String(pair.key.value) : '';
      if (!allowed.includes(key)) {
        const scope = where === 'the config' ? '' : ` in ${where}`;
        const misplaced = this.wrongLevel(key, where);
        this.at(pair.key, `unknown key "${key}"${scope}${misplaced || `${didYouMean(key, allowed)}; known keys: ${allowed.join(', ')}`}`);
        continue;
      }
      out.set(key, pair.value);
    }
    return out;
  }

  bool(node: YamlNode | null | undefined, where: string, fallback: boolean): boolean {
    if (node === undefined) return fallback;
    if (isScalar(node) && typeof node.value === 'boolean') return node.value;
    // YAML 1.1 (PyYAML, old Ansible) read yes/no/on/off as booleans; YAML 1.2, read here, does not.
    const word = isScalar(node) && typeof node.value === 'string' ? node.value : '';
    const habit = /^(y|yes|n|no|on|off)$/i.test(word) ? ` ("${word}" is a string in YAML 1.2: write ${/^(y|yes|on)$/i.test(word) ? 'true' : 'false'})` : '';
    this.at(node, `${where} must be true or false${habit}`);
    return fallback;
  }

  int(node: YamlNode | null | undefined, where: string, fallback: number, allowed: { min: number; max: number } | readonly number[]): number {
    if (node === undefined) return fallback;
    const value = isScalar(node) ? node.value : undefined;
    if (typeof value !== 'number' || !Number.isInteger(value)) {
      this.at(node, `${where} must be a whole number`);
      return fallback;
    }
    const isList = Array.isArray(allowed);
    const list = allowed as readonly number[];
    const range = allowed as { min: number; max: number };
    if (isList ? list.includes(value) : value >= range.min && value <= range.max) return value;
    this.at(node, `${where} must be ${isList ? `one of ${list.join(', ')}` : `between ${range.min} and ${range.max}`}, not ${value}`);
    return fallback;
  }

  str(node: YamlNode | null | undefined, where: string, check?: (s: string) => string | null): string | undefined {
    if (node === undefined) return undefined;
    const value = isScalar(node) ? node.value : undefined;
    if (typeof value !== 'string') {
      this.at(node, `${where} must be a string`);
      return undefined;
    }
    if (/[\0-\x1f\x7f]/.test(value)) {
      this.at(node, `${where} must not contain control characters or newlines`);
      return undefined;
    }
    const problem = check?.(value) ?? null;
    if (problem) {
      this.at(node, `${where} ${problem}`);
      return undefined;
    }
    return value;
  }

  choice<T extends string>(node: YamlNode | null | undefined, where: string, choices: readonly T[], fallback: T): T {
    if (node === undefined) return fallback;
    const value = isScalar(node) ? String(node.value) : undefined;
    if (value !== undefined && (choices as readonly string[]).includes(value)) return value as T;
    this.at(node, `${where} must be one of ${choices.join(', ')}${value === undefined ? '' : `, not "${value}"${didYouMean(value, choices)}`}`);
    return fallback;
  }

  strList(node: YamlNode | null | undefined, where: string, check?: (s: string) => string | null): string[] | undefined {
    if (node === undefined) return undefined;
    if (!isSeq(node)) {
      this.at(node, `${where} must be a list`);
      return undefined;
    }
    const out: string[] = [];
    for (const item of node.items as (YamlNode | null)[]) {
      const s = this.str(item, `each entry of ${where}`, check);
      if (s !== undefined) out.push(s);
    }
    return out;
  }
}

