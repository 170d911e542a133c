// Lines of shell start-up files, boot scripts, cron jobs and unit ExecStart= that fetch code from
// the network and run it, or hand a shell to the network: the backdoors the Outscale clean-up
// guide tells a user of a shared image to look for ("Check that no unwanted commands are run").
// A heuristic over one logical line, not a shell parser: it looks for the shapes these
// commands take in practice (curl|sh, sh -c "$(wget -O- ...)", bash -i >& /dev/tcp/...,
// echo ... | base64 -d | sh, nc -e /bin/sh, socat exec:, a download followed by running it).
// Comments never match. Everything it reports names the shape it saw.

export type RemoteExecKind =
  | 'download-piped-to-interpreter'
  | 'interpreter-runs-download'
  | 'dev-tcp'
  | 'decoded-payload-executed'
  | 'netcat-exec'
  | 'shell-piped-to-netcat'
  | 'socat-exec'
  | 'interpreter-socket'
  | 'download-then-run';

export interface RemoteExecMatch {
  kind: RemoteExecKind;
  reason: string;
}

const DOWNLOADER = /(?:^|[\s;&|(`$])(?:\S*\/)?(?:curl|wget|fetch|aria2c)(?=\s|$)/;
const INTERPRETER_WORD = /^(?:\S*\/)?(?:sh|bash|dash|zsh|ksh|mksh|ash|fish|python[0-9.]*|perl|ruby|php[0-9.]*|node|nodejs|lua|tclsh|source|\.)$/;
const SHELL_WORD = /^(?:\S*\/)?(?:sh|bash|dash|zsh|ksh|mksh|ash)$/;
const NETCAT = /^(?:\S*\/)?(?:nc|ncat|netcat)(?:\.\w+)?$/;
const DECODER = /(?:^|\s)(?:\S*\/)?(?:base64\s+(?:.*\s)?(?:-d|-D|--decode)\b|base32\s+(?:.*\s)?(?:-d|--decode)\b|openssl\s+(?:base64|enc)\s+(?:.*\s)?-d\b|xxd\s+(?:.*\s)?-r\b|uudecode\b)/;

/** The line with quoted text kept but a trailing shell comment ("  # ...") removed; '' for a comment line. */
export function stripShellComment(line: string): string {
  let quote: string | null = null;
  for (let i = 0; i < line.length; i += 1) {
    const c = line[i] as string;
    if (quote) {
      if (c === '\\' && quote === '"') i += 1;
      else if (c === quote) quote = null;
    } else if (c === '\\') {
      i += 1;
    } else if (c === '"' || c === "'") {
      quote = c;
    } else if (c === '#' && (i === 0 || /\s|;/.test(line[i - 1] as string))) {
      return line.slice(0, i);
    }
  }
  return line;
}

/** Splits on a separator (outside quotes): "|" but not "||", or any of ; && || |. */
function splitOutsideQuotes(line: string, pipesOnly: boolean): string[] {
  const parts: string[] = [];
  let quote: string | null = null;
  let depth = 0;
  let current = '';
  for (let i = 0; i < line.length; i += 1) {
    const c = line[i] as string;
    if (quote) {
      if (c === '\\' && quote === '"') {
        current += c + (line[i + 1] ?? '');
        i += 1;
        continue;
      }
      if (c === quote) quote = null;
      current += c;
      continue;
    }
    if (c === '"' || c === "'") {
      quote = c;
      current += c;
      continue;
    }
    if (c === '(') depth += 1;
    if (c === ')') depth = Math.max(0, depth - 1);
    if (depth === 0) {
      const two = line.slice(i, i + 2);
      if (c === '|' && two !== '||' && line[i - 1] !== '|' && line[i - 1] !== '>') {
        parts.push(current);
        current = '';
        if (line[i + 1] === '&') i += 1; // |& pipes stderr too
        continue;
      }
      if (!pipesOnly && (two === '&&' || two === '||')) {
        parts.push(current);
        current = '';
        i += 1;
        continue;
      }
      if (!pipesOnly && c === ';') {
        parts.push(current);
        current = '';
        continue;
      }
    }
    current += c;
  }
  parts.push(current);
  return parts.map((p) => p.trim()).filter((p) => p !== '');
}

/** The command word of a simple command: after sudo/env/exec/nohup/time and their options, assignments, "(". */
function commandWord(segment: string): { word: string; rest: string[] } {
  const words = segment.replace(/^[({]\s*/, '').split(/\s+/).filter((w) => w !== '');
  let i = 0;
  for (;;) {
    const w = words[i];
    if (w === undefined) return { word: '', rest: [] };
    if (/^[A-Za-z_][A-Za-z0-9_]*=/.test(w) || /^(?:\S*\/)?(?:sudo|env|exec|nohup|time|nice|ionice|setsid|stdbuf|doas|command|builtin)$/.test(w) || (i > 0 && w.startsWith('-') && /^(?:\S*\/)?(?:sudo|env|nice|ionice|stdbuf|doas)$/.test(words[i - 1] ?? ''))) {
      i += 1;
      continue;
    }
    return { word: w.replace(/^["']|["']$/g, ''), rest: words.slice(i + 1) };
  }
}

function isDownload(segment: string): boolean {
  return DOWNLOADER.test(` ${segment}`);
}

/** The script of `sh -c 'script'`, `bash -lc "script"`, `su -c "script" user` (quotes removed), or null. */
function shellScript(cmd: string): string | null {
  const { word, rest } = commandWord(cmd);
  if (!SHELL_WORD.test(word) && !/^(?:\S*\/)?(?:su|runuser)$/.test(word)) return null;
  const flag = rest.findIndex((r) => /^-[A-Za-z]*c[A-Za-z]*$/.test(r));
  if (flag < 0) return null;
  // Re-find the script in the original text: the words after the flag, quotes and all.
  const at = cmd.indexOf(rest[flag] as string, cmd.indexOf(word) + word.length) + (rest[flag] as string).length;
  const script = cmd.slice(at).trim();
  const quoted = /^"((?:[^"\\]|\\.)*)"|^'([^']*)'/.exec(script);
  if (quoted) return quoted[1] !== undefined ? quoted[1].replace(/\\(["\\$`])/g, '$1') : (quoted[2] as string);
  return script.split(/\s+/)[0] ?? null;
}

/** Judges one logical line (continuations already joined). Null when nothing matches. */
export function remoteExecution(rawLine: string, depth = 0): RemoteExecMatch | null {
  const line = stripShellComment(rawLine).trim();
  if (line === '') return null;

  if (/\/dev\/(?:tcp|udp)\//.test(line)) {
    return { kind: 'dev-tcp', reason: 'opens a network connection with bash\'s /dev/tcp or /dev/udp' };
  }

  const pipeline = splitOutsideQuotes(line, true);
  for (let i = 0; i < pipeline.length; i += 1) {
    const seg = pipeline[i] as string;
    const later = pipeline.slice(i + 1).map((s) => commandWord(s).word);
    if (isDownload(seg) && later.some((w) => INTERPRETER_WORD.test(w))) {
      return { kind: 'download-piped-to-interpreter', reason: 'downloads content and pipes it into an interpreter' };
    }
    if (DECODER.test(` ${seg}`) && later.some((w) => INTERPRETER_WORD.test(w))) {
      return { kind: 'decoded-payload-executed', reason: 'decodes an embedded payload and pipes it into an interpreter' };
    }
    if (SHELL_WORD.test(commandWord(seg).word) && later.some((w) => NETCAT.test(w))) {
      return { kind: 'shell-piped-to-netcat', reason: 'pipes a shell into netcat (a reverse shell)' };
    }
  }

  // sh -c "$(curl ...)", bash <(wget -O- ...), eval "$(curl ...)", . <(curl ...), python -c "$(curl ...)"
  const substitution = /(?:\$\(|<\(|`)\s*(?:\S*\/)?(?:curl|wget|fetch)\b/;
  const decodedSubstitution = /(?:\$\(|<\(|`)[^)`]*\b(?:base64|base32)\s+[^)`]*(?:-d|-D|--decode)\b/;
  for (const cmd of splitOutsideQuotes(line, false)) {
    const { word } = commandWord(cmd);
    // sh -c "curl ... | sh": the quoted script is judged as a line of its own.
    const script = depth < 3 ? shellScript(cmd) : null;
    if (script) {
      const inner = remoteExecution(script, depth + 1);
      if (inner) return inner;
    }
    if (INTERPRETER_WORD.test(word) || word === 'eval') {
      if (substitution.test(cmd)) return { kind: 'interpreter-runs-download', reason: `${word} runs what a download prints` };
      if (decodedSubstitution.test(cmd)) return { kind: 'decoded-payload-executed', reason: `${word} runs a decoded embedded payload` };
    }
    if (NETCAT.test(word) && /(?:^|\s)(?:-[A-Za-z]*[ec][A-Za-z]*|--(?:sh-)?exec|--lua-exec)(?:\s|=|$)/.test(cmd)) {
      return { kind: 'netcat-exec', reason: 'netcat hands a program to the network (-e/-c/--exec)' };
    }
    if (/^(?:\S*\/)?socat$/.test(word) && /\b(?:exec|system):/i.test(cmd)) {
      return { kind: 'socat-exec', reason: 'socat connects a program to the network (EXEC:/SYSTEM:)' };
    }
    if (/^(?:\S*\/)?(?:python[0-9.]*|perl|ruby|php[0-9.]*)$/.test(word) && /(?:^|\s)-[a-zA-Z]*[cer]\b/.test(cmd)
      && /\b(?:socket|fsockopen|TCPSocket|IO::Socket|pty\.spawn)\b/.test(cmd)) {
      return { kind: 'interpreter-socket', reason: `${word} one-liner opening a network socket` };
    }
  }

  // wget URL && sh file / curl -o f URL; chmod +x f; ./f / wget x.rpm && rpm -Uvh x.rpm
  const commands = splitOutsideQuotes(line, false);
  const firstDownload = commands.findIndex((c) => isDownload(c) && /(?:https?|ftp):\/\//.test(c));
  if (firstDownload >= 0) {
    for (const cmd of commands.slice(firstDownload + 1)) {
      const { word, rest } = commandWord(cmd);
      const runsFile = (INTERPRETER_WORD.test(word) && rest.some((r) => !r.startsWith('-')))
        || word.startsWith('./')
        || (word === 'chmod' && rest.some((r) => /^(?:[ugoa]*\+[rwX]*x|[0-7]*[1357][0-7]{0,2})$/.test(r)))
        || (/^(?:\S*\/)?rpm$/.test(word) && rest.some((r) => /^-[A-Za-z]*[iU]/.test(r)))
        || (/^(?:\S*\/)?dpkg$/.test(word) && rest.some((r) => /^-[A-Za-z]*i|^--install$/.test(r)));
      if (runsFile) return { kind: 'download-then-run', reason: `downloads a file, then runs or installs it (${word})` };
    }
  }
  return null;
}

export interface ScriptMatch extends RemoteExecMatch {
  /** 1-based line where the logical line starts. */
  line: number;
  /** The logical line as written (continuations joined with a space). */
  text: string;
}

/** Every matching logical line of a script (backslash-newline continuations joined). */
export function scanScript(text: string): ScriptMatch[] {
  const out: ScriptMatch[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i += 1) {
    const start = i;
    let logical = (lines[i] as string).replace(/\r$/, '');
    while (/(?:^|[^\\])\\$/.test(logical) && i + 1 < lines.length) {
      i += 1;
      logical = `${logical.slice(0, -1)} ${(lines[i] as string).replace(/\r$/, '').trim()}`;
    }
    const match = remoteExecution(logical);
    if (match) out.push({ ...match, line: start + 1, text: logical.trim() });
  }
  return out;
}
