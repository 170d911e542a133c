import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { CliArgs } from '../cli/args.js';
import { parseConfig } from '../config.js';
import { runBoot } from '../boot/engine.js';
import { Console } from '../os/console.js';
import { readTreeText, listTreeDir } from '../os/files.js';
import { RootTree } from '../os/root.js';
import { sshdOracle } from '../os/sshd-oracle.js';
import { hashScheme, parseAccountFile, passwordState } from '../parsers/accounts.js';
import { parsePublicKey } from '../parsers/ssh-public-key.js';
import { ed25519Line } from '../metadata/emulator/keys.js';
import { startEmulator } from '../metadata/emulator.js';
import { parseAccountFile as parseAccounts, passwdEntries } from '../parsers/accounts.js';
import { buildDemoImage, DEMO_USER } from './image.js';
import { colourWanted, elide, fit, paint, WIDTH } from './screen.js';
import { ImprintError } from '../os/errors.js';
import { diffSnapshots, snapshotTree } from './snapshot.js';

// `npm start`: a careless image, imprint boot on it, and what changed, readable in ten seconds.

const DEMO_CONFIG = `# The demo image's /etc/imprint/imprint.yaml
default_user:
  name: ${DEMO_USER}
  groups: [adm, sudo]
`;

const SSHD_KEYS = ['passwordauthentication', 'kbdinteractiveauthentication', 'permitemptypasswords', 'pubkeyauthentication', 'permitrootlogin', 'usedns'];

interface Look {
  keys: Map<string, string>;
  accounts: Map<string, string>;
  sshd: Map<string, string>;
  launchKeys: Map<string, string>;
}

/** The fingerprints in the login user's authorized_keys. */
async function launchKeys(root: RootTree): Promise<Map<string, string>> {
  const passwd = passwdEntries(parseAccounts((await readTreeText(root, '/etc/passwd')) ?? '', 'passwd', '/etc/passwd'));
  const home = passwd.find((p) => p.name === DEMO_USER)?.home ?? `/home/${DEMO_USER}`;
  const text = (await readTreeText(root, `${home}/.ssh/authorized_keys`).catch(() => null)) ?? '';
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (!line.trim() || line.startsWith('#')) continue;
    try {
      const key = parsePublicKey(line);
      out.set(key.comment || key.label, key.fingerprint);
    } catch {
      /* not a key line */
    }
  }
  return out;
}

async function look(root: RootTree): Promise<Look> {
  const keys = new Map<string, string>();
  for (const name of await listTreeDir(root, '/etc/ssh')) {
    if (!/^ssh_host_.*_key\.pub$/.test(name)) continue;
    const key = parsePublicKey((await readTreeText(root, `/etc/ssh/${name}`)) ?? '', name);
    keys.set(key.label, key.fingerprint);
  }
  const shadow = parseAccountFile((await readTreeText(root, '/etc/shadow')) ?? '', 'shadow', '/etc/shadow');
  const accounts = new Map(shadow.lines.filter((l) => ['root', DEMO_USER].includes(l.fields[0] as string)).map((l) => {
    const field = l.fields[1] as string;
    return [l.fields[0] as string, `${passwordState(field)} (${hashScheme(field)})`];
  }));
  const effective = (await (await sshdOracle(root)).effective({ specs: [null] })).answers[0] as Map<string, string[]>;
  const sshd = new Map(SSHD_KEYS.map((k) => [k, effective.get(k)?.[0] ?? '?']));
  return { keys, accounts, sshd, launchKeys: await launchKeys(root) };
}

/** Before → after per name; the new value on a line of its own when both do not fit. */
function table(title: string, before: Map<string, string>, after: Map<string, string>, colour: boolean): string[] {
  const names = [...new Set([...before.keys(), ...after.keys()])];
  const width = Math.max(...names.map((n) => n.length));
  return [paint(colour, 'bold', title), ...names.flatMap((n) => {
    const [b, a] = [before.get(n) ?? '(none)', after.get(n) ?? '(none)'];
    const head = `  ${n.padEnd(width)}  ${b}`;
    if (b === a) return fit(`${head}  (unchanged)`);
    const oneLine = `${head}  →  ${a}`;
    return oneLine.length <= WIDTH ? [`${head}  →  ${paint(colour, 'green', a)}`] : [...fit(head), `${' '.repeat(width + 2)}  →  ${paint(colour, 'green', a)}`];
  })];
}

export async function demoCommand(args: CliArgs): Promise<number> {
  if (process.getuid?.() !== 0) throw new ImprintError('the demo image holds root-owned files and boot changes owners and modes: run it as root (sudo imprint demo)');
  const colour = colourWanted(process.stdout);
  const say = (text: string): void => {
    process.stdout.write(`${text.split('\n').flatMap((l) => fit(l)).join('\n')}\n`);
  };
  const dir = await mkdtemp(path.join(tmpdir(), 'imprint-demo-'));
  const root = new RootTree(dir);
  try {
    await buildDemoImage(dir);
    await mkdir(path.join(dir, 'etc/imprint'), { recursive: true });
    await writeFile(path.join(dir, 'etc/imprint/imprint.yaml'), DEMO_CONFIG);
    const before = await look(root);
    const snapBefore = await snapshotTree(dir);
    // The instance's metadata service, on loopback: the launch key the user chose at launch.
    const emulator = await startEmulator({ keys: [ed25519Line('launch-key@laptop')], productCodes: [] });
    let report;
    let elapsed;
    try {
      say(`imprint demo: a copied image in ${dir}\n  passwords "imagepass" for root and ${DEMO_USER}, host keys baked at build time,\n  PasswordAuthentication yes`);
      say(`  metadata service: imprint emulate at ${emulator.url}\n  (instance ${emulator.instanceId}, one launch key)\n\n$ imprint boot --root ${dir} \\\n    --metadata-url ${emulator.url}`);
      const screen = {
        fit: (line: string) => fit(line),
        elide: (line: string) => elide(line),
        paint: (priority: number, line: string) => (priority <= 3 ? paint(colour, 'red', line) : priority === 4 ? paint(colour, 'yellow', line) : line),
      };
      const out = new Console({ json: false, verbose: args.verbose, screen });
      const config = parseConfig(DEMO_CONFIG, root.path('/etc/imprint/imprint.yaml'));
      config.metadata.url = emulator.url;
      const started = performance.now();
      report = await runBoot({ root, config, dryRun: false, out, explicitMetadataUrl: true });
      elapsed = Math.round(performance.now() - started);
      say(`\n(the metadata service answered ${emulator.requests.length} requests)`);
    } finally {
      await emulator.close();
    }
    const after = await look(root);
    const diff = diffSnapshots(snapBefore, await snapshotTree(dir));
    const lines = [
      '',
      paint(colour, 'bold', `What changed (boot took ${elapsed} ms, exit status ${report.exitCode}):`),
      ...table('Host keys (SHA256 fingerprints):', before.keys, after.keys, colour),
      ...table('Passwords (/etc/shadow):', before.accounts, after.accounts, colour),
      ...table('sshd, effective (sshd -T):', before.sshd, after.sshd, colour),
      ...table(`Launch keys (~${DEMO_USER}/.ssh/authorized_keys):`, before.launchKeys, after.launchKeys, colour),
      'Files:',
      ...diff.added.map((f) => `  + ${f}`),
      ...diff.changed.map((f) => `  ~ ${f}`),
      ...diff.removed.map((f) => `  - ${f}`),
      '',
      ...fit(args.keep ? `The tree is kept in ${dir}.` : 'The demo tree has been removed (use --keep to look at it).'),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    if (args.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return report.exitCode;
  } finally {
    if (!args.keep) await rm(dir, { recursive: true, force: true });
  }
}
