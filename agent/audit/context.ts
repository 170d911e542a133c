import type { Stats } from 'node:fs';
import path from 'node:path';
import { loadState, type LoadedState } from '../boot/state.js';
import { errorMessage } from '../os/errors.js';
import { localIdentity, type LocalIdentity } from '../os/identity.js';
import type { RootTree } from '../os/root.js';
import { sshdOracle, type SshdMode } from '../os/sshd-oracle.js';
import { listResolvedDir, lstatResolved, readResolvedText, readTreeLink, statResolved, type TreeText } from '../os/tree-read.js';
import { parseAccountFile, passwdEntries, type PasswdEntry } from '../parsers/accounts.js';
import { splitArgs } from '../parsers/sshd-config.js';
import { defaultConfig, parseConfig, type Config } from '../config.js';
import { proveKeysOnly, settlePlan, type KeysOnlyProof } from '../sshd/keys-only.js';
import { loadConfigSet, type ConfigSet } from '../sshd/config-set.js';
import { enabledUnits, type EnabledUnit } from './units.js';

// What every check reads, read once: files through the tree (symlinks followed inside it, never
// out of it), the account databases, sshd's effective settings, imprint's state, the enabled
// units. Nothing here writes: an audit leaves the tree as it found it.

export interface Account extends PasswdEntry {
  /** Line in /etc/passwd. */
  line: number;
}

export interface ShadowEntry {
  name: string;
  /** The password field. A secret: never put into a finding. */
  field: string;
  line: number;
}

export interface SshdFacts {
  /** `sshd -T` output parsed; keys lower-case. */
  settings: Map<string, string[]>;
  /** Where the settings came from, for evidence values. */
  source: 'sshd -T' | 'sshd -T (throwaway host key)' | 'config files';
  /** Why sshd -T could not run, when the config files were read instead. */
  problem: string | null;
  /** Which sshd answered: the instance's own (live), the image's own (sandboxed), this machine's (sandboxed, over the tree's /etc/ssh). */
  checkedWith: SshdMode | null;
  /** The config files as sshd reads them (for file:line evidence); null when unreadable. */
  set: ConfigSet | null;
  /** Login contexts (`sshd -T -C`, one per account and Match block) that still take a password; null without sshd. */
  contextFailures: string[] | null;
  /** How many contexts sshd was asked about. */
  contexts: number;
  /**
   * Set when the image has imprint.service enabled (and sshd hardening on): the settings above
   * are the ones sshd will keep after imprint's first boot, proved the same way.
   */
  afterFirstBoot: string | null;
}

function memo<T>(fn: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | null = null;
  return () => (p ??= fn());
}

/** sshd's compiled-in defaults (OpenSSH 9) for the settings the audit looks at. */
export const SSHD_DEFAULTS: Record<string, string> = {
  passwordauthentication: 'yes',
  kbdinteractiveauthentication: 'yes',
  permitrootlogin: 'prohibit-password',
  permitemptypasswords: 'no',
  pubkeyauthentication: 'yes',
  usepam: 'no',
  authenticationmethods: 'any',
  authorizedkeysfile: '.ssh/authorized_keys .ssh/authorized_keys2',
  authorizedkeyscommand: 'none',
};
export const DEFAULT_HOST_KEYS = ['/etc/ssh/ssh_host_rsa_key', '/etc/ssh/ssh_host_ecdsa_key', '/etc/ssh/ssh_host_ed25519_key'];

export class AuditContext {
  readonly live: boolean;

  constructor(readonly root: RootTree) {
    this.live = root.isLive;
  }

  text(inTree: string): Promise<TreeText | null> {
    return readResolvedText(this.root, inTree);
  }

  /** The lines of a file (without newlines), or null when it does not exist. */
  async lines(inTree: string): Promise<string[] | null> {
    const t = await this.text(inTree);
    return t === null ? null : t.text.split('\n');
  }

  list(dir: string): Promise<string[]> {
    return listResolvedDir(this.root, dir);
  }

  lstat(inTree: string): Promise<Stats | null> {
    return lstatResolved(this.root, inTree);
  }

  stat(inTree: string): Promise<Stats | null> {
    return statResolved(this.root, inTree);
  }

  readlink(inTree: string): Promise<string | null> {
    return readTreeLink(this.root, inTree);
  }

  readonly accounts = memo(async (): Promise<Account[]> => {
    const t = await this.text('/etc/passwd');
    if (t === null) return [];
    const parsed = parseAccountFile(t.text, 'passwd', '/etc/passwd');
    return passwdEntries(parsed).map((e, i) => ({ ...e, line: parsed.lines[i]?.line ?? i + 1 }));
  });

  readonly shadow = memo(async (): Promise<Map<string, ShadowEntry> | null> => {
    const t = await this.text('/etc/shadow');
    if (t === null) return null;
    const parsed = parseAccountFile(t.text, 'shadow', '/etc/shadow');
    return new Map(parsed.lines.map((l) => [l.fields[0] as string, { name: l.fields[0] as string, field: l.fields[1] ?? '', line: l.line }]));
  });

  /** Unique home directories of the accounts (root's first), each with the accounts that use it. */
  readonly homes = memo(async (): Promise<{ home: string; users: Account[] }[]> => {
    const byHome = new Map<string, Account[]>();
    const accounts = [...(await this.accounts())].sort((a, b) => (a.uid === 0 ? -1 : 0) - (b.uid === 0 ? -1 : 0));
    for (const a of accounts) {
      if (!a.home.startsWith('/')) continue;
      const home = path.posix.normalize(a.home);
      byHome.set(home, [...(byHome.get(home) ?? []), a]);
    }
    const out: { home: string; users: Account[] }[] = [];
    for (const [home, users] of byHome) {
      if ((await this.stat(home))?.isDirectory()) out.push({ home, users });
    }
    return out;
  });

  readonly state = memo((): Promise<LoadedState> => loadState(this.root));
  readonly identity = memo((): Promise<LocalIdentity> => localIdentity(this.root));
  readonly units = memo((): Promise<EnabledUnit[]> => enabledUnits(this));

  /** imprint's config when the image will run imprint boot (its unit enabled, sshd hardening on); else null. */
  readonly imprintFirstBoot = memo(async (): Promise<Config | null> => {
    if (this.live) return null;
    if (!(await this.units()).some((u) => u.scope === 'system' && u.name === 'imprint.service')) return null;
    const text = await this.text('/etc/imprint/imprint.yaml');
    let config: Config;
    try {
      config = text === null ? defaultConfig() : parseConfig(text.text, '/etc/imprint/imprint.yaml');
    } catch {
      return null;
    }
    return config.sshd.enabled ? config : null;
  });

  readonly sshd = memo(async (): Promise<SshdFacts | null> => {
    if ((await this.text('/etc/ssh/sshd_config')) === null) return null;
    let set: ConfigSet | null = null;
    let setProblem: string | null = null;
    try {
      set = await loadConfigSet(this.root);
    } catch (err) {
      setProblem = errorMessage(err);
    }
    try {
      const oracle = await sshdOracle(this.root);
      const firstBoot = await this.imprintFirstBoot();
      let proof: KeysOnlyProof;
      let afterFirstBoot: string | null = null;
      if (firstBoot !== null) {
        // Judged as it will be after first boot: imprint's own plan, checked by the image's sshd.
        const settled = await settlePlan(this.root, firstBoot, oracle, true);
        proof = settled.proof ?? (await proveKeysOnly(this.root, oracle, { throwawayKey: true }));
        afterFirstBoot = 'imprint.service is enabled in the image: judged as after its first boot, which makes sshd keys-only';
      } else {
        proof = await proveKeysOnly(this.root, oracle, { throwawayKey: true });
      }
      const settings = proof.global;
      if (proof.throwawayKey && !settings.has('hostkey')) settings.set('hostkey', [...DEFAULT_HOST_KEYS]);
      return {
        settings, source: proof.throwawayKey ? 'sshd -T (throwaway host key)' : 'sshd -T', problem: null, set, checkedWith: oracle.mode,
        contextFailures: proof.failures, contexts: proof.contexts.length, afterFirstBoot,
      };
    } catch (err) {
      if (set === null) throw new Error(`sshd -T failed (${errorMessage(err)}) and the config files do not parse (${setProblem})`);
      // sshd could not run (not installed here, no sandbox): read the files as sshd would, with its defaults.
      const settings = new Map<string, string[]>();
      for (const [key, value] of Object.entries(SSHD_DEFAULTS)) settings.set(key, [value]);
      const hostKeys: string[] = [];
      const read = new Set<string>();
      for (const r of set.order) {
        if (!r.global || r.line.kind !== 'directive') continue;
        const key = r.line.key === 'challengeresponseauthentication' ? 'kbdinteractiveauthentication' : r.line.key;
        if (key === 'hostkey') hostKeys.push(splitArgs(r.line.value)[0] ?? '');
        else if (!read.has(key)) {
          read.add(key);
          settings.set(key, [splitArgs(r.line.value).join(' ')]);
        }
      }
      settings.set('hostkey', hostKeys.length > 0 ? hostKeys : [...DEFAULT_HOST_KEYS]);
      return { settings, source: 'config files', problem: errorMessage(err), set, checkedWith: null, contextFailures: null, contexts: 0, afterFirstBoot: null };
    }
  });
}
