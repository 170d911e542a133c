import type { AuditContext, SshdFacts } from '../context.js';
import { ev, finding, G } from '../guidelines.js';
import { CheckSkipped, type Check, type Evidence, type Finding } from '../types.js';
import { firstGlobal } from '../../sshd/config-set.js';
import { firstArg } from '../../parsers/sshd-config.js';

// sshd's effective settings, from the same sshd oracle boot uses (os/sshd-oracle.ts: the image's
// own sshd in the sandbox, or this machine's over the tree's /etc/ssh), with file:line evidence
// from the configuration files sshd reads. Match blocks are judged by sshd too: `sshd -T -C` for
// every account that can log in and every Match block's context; a Match line is reported only
// when sshd says some context takes a password because of it. An image with imprint.service
// enabled is judged as it will be after first boot, and the finding says so.

const ALIASES: Record<string, string[]> = {
  kbdinteractiveauthentication: ['kbdinteractiveauthentication', 'challengeresponseauthentication'],
};

async function facts(ctx: AuditContext): Promise<SshdFacts> {
  const f = await ctx.sshd();
  if (f === null) throw new CheckSkipped('sshd is not installed here (no /etc/ssh/sshd_config)');
  return f;
}

export function effective(f: SshdFacts, key: string): string {
  return (f.settings.get(key)?.[0] ?? '').toLowerCase();
}

/** Where the effective value of a keyword was set: its first global line, else sshd's default. */
function settingEvidence(f: SshdFacts, key: string): Evidence {
  const value = effective(f, key);
  const origin = f.source === 'config files' ? ` (read from the config files: ${f.problem ?? 'sshd -T could not run'})` : f.afterFirstBoot ? ` (${f.afterFirstBoot})` : '';
  for (const k of ALIASES[key] ?? [key]) {
    const line = f.set ? firstGlobal(f.set, k) : undefined;
    if (line) return ev(line.file, line.index + 1, `${line.line.raw.trim()}${origin}`);
  }
  return ev('/etc/ssh/sshd_config', null, `${key} ${value} (sshd's default: no line sets it)${origin}`);
}

/**
 * Lines inside Match blocks (or files included from one) that set a keyword to one of `values`,
 * read as sshd reads them (quotes removed, trailing comment dropped). With sshd at hand, only
 * when sshd itself reports a login context that takes a password with that keyword.
 */
function matchLines(f: SshdFacts, key: string, values: RegExp): Evidence[] {
  if (!f.set) return [];
  const keys = ALIASES[key] ?? [key];
  if (f.contextFailures !== null) {
    const contexts = f.contextFailures.filter((c) => keys.some((k) => c.includes(`${k} `)));
    if (contexts.length === 0) return [];
    const note = ` (sshd -T -C: ${contexts.slice(0, 3).map((c) => c.split(':')[0]).join('; ')}${contexts.length > 3 ? '; …' : ''}${f.afterFirstBoot ? `; ${f.afterFirstBoot}` : ''})`;
    return f.set.order
      .filter((r) => !r.global && r.line.kind === 'directive' && keys.includes(r.line.key) && values.test(firstArg(r.line)))
      .map((r) => ev(r.file, r.index + 1, `${r.line.raw.trim()}${note}`));
  }
  return f.set.order
    .filter((r) => !r.global && r.line.kind === 'directive' && keys.includes(r.line.key) && values.test(firstArg(r.line)))
    .map((r) => ev(r.file, r.index + 1, r.line.raw.trim()));
}

const SSHD_GUIDES = [G.sshKeysOnly, G.bakingSshd, G.egiSsh];

export const sshdAuthentication: Check = {
  id: 'sshd.authentication',
  title: 'sshd: the login methods it accepts',
  severity: 'info',
  guidelines: SSHD_GUIDES,
  async run(ctx) {
    const f = await facts(ctx);
    const methods: string[] = [];
    if (effective(f, 'pubkeyauthentication') === 'yes') methods.push('publickey');
    if (effective(f, 'passwordauthentication') === 'yes') methods.push('password');
    if (effective(f, 'kbdinteractiveauthentication') === 'yes') methods.push('keyboard-interactive');
    const keysOnly = methods.length === 1 && methods[0] === 'publickey';
    const summary = ['passwordauthentication', 'kbdinteractiveauthentication', 'pubkeyauthentication', 'permitrootlogin', 'permitemptypasswords', 'usepam', 'authenticationmethods']
      .map((k) => `${k} ${effective(f, k) || '?'}`).join(', ');
    const when = f.afterFirstBoot ? ' after imprint\'s first boot (imprint.service is enabled in the image; judged as after it)' : '';
    return [finding('info', keysOnly ? `sshd accepts public keys only${when}` : `sshd accepts ${methods.join(', ') || 'no login method'}${when}`,
      ev('/etc/ssh/sshd_config', null, `${summary} (${f.source}${f.checkedWith ? `, ${f.checkedWith === 'image-sshd' ? 'the image\'s own sshd, sandboxed' : f.checkedWith === 'live' ? 'this system\'s sshd' : 'this machine\'s sshd over the tree\'s /etc/ssh, sandboxed'}` : ''}${f.contexts > 0 ? `, ${f.contexts} login contexts with -C` : ''}${f.afterFirstBoot ? `; ${f.afterFirstBoot}` : ''})`),
      { keysOnly, methods: methods.join(','), source: f.source, checkedWith: f.checkedWith })];
  },
};

export const sshdPasswordAuthentication: Check = {
  id: 'sshd.password-authentication',
  title: 'sshd: password logins',
  severity: 'high',
  guidelines: SSHD_GUIDES,
  async run(ctx) {
    const f = await facts(ctx);
    const out: Finding[] = [];
    if (effective(f, 'passwordauthentication') === 'yes') {
      out.push(finding('high', 'sshd accepts password logins (PasswordAuthentication yes)', settingEvidence(f, 'passwordauthentication')));
    }
    for (const e of matchLines(f, 'passwordauthentication', /^yes\b/i)) {
      out.push(finding('high', 'a Match block turns password logins on for the connections it matches', e));
    }
    return out;
  },
};

export const sshdKbdInteractive: Check = {
  id: 'sshd.kbd-interactive-authentication',
  title: 'sshd: keyboard-interactive logins',
  severity: 'high',
  guidelines: SSHD_GUIDES,
  async run(ctx) {
    const f = await facts(ctx);
    const out: Finding[] = [];
    const pam = effective(f, 'usepam') === 'yes';
    if (effective(f, 'kbdinteractiveauthentication') === 'yes') {
      out.push(pam
        ? finding('high', 'sshd accepts keyboard-interactive logins, which PAM answers with the password', settingEvidence(f, 'kbdinteractiveauthentication'))
        : finding('low', 'keyboard-interactive is on, but without PAM (UsePAM no) nothing asks for a password today', settingEvidence(f, 'kbdinteractiveauthentication')));
    }
    for (const e of matchLines(f, 'kbdinteractiveauthentication', /^yes\b/i)) {
      out.push(finding(pam ? 'high' : 'low', 'a Match block turns keyboard-interactive logins on for the connections it matches', e));
    }
    return out;
  },
};

export const sshdPermitRootLogin: Check = {
  id: 'sshd.permit-root-login',
  title: 'sshd: root logins',
  severity: 'high',
  guidelines: [G.sshRootLogin, G.awsRootLogin],
  async run(ctx) {
    const f = await facts(ctx);
    const out: Finding[] = [];
    const value = effective(f, 'permitrootlogin');
    const passwords = effective(f, 'passwordauthentication') === 'yes' || effective(f, 'kbdinteractiveauthentication') === 'yes';
    if (value === 'yes') {
      out.push(passwords
        ? finding('high', 'root may log in over SSH with a password (PermitRootLogin yes, and password logins are on)', settingEvidence(f, 'permitrootlogin'))
        : finding('low', 'PermitRootLogin yes: root would take passwords as soon as password logins are turned on', settingEvidence(f, 'permitrootlogin')));
    } else if (value === 'prohibit-password' || value === 'without-password' || value === 'forced-commands-only') {
      out.push(finding('info', `root may log in over SSH with a key (PermitRootLogin ${value}); "no" if the image is not meant to be used as root`, settingEvidence(f, 'permitrootlogin')));
    }
    for (const e of matchLines(f, 'permitrootlogin', /^yes\b/i)) {
      out.push(finding(passwords ? 'high' : 'low', 'a Match block lets root log in with any method for the connections it matches', e));
    }
    return out;
  },
};

export const sshdPermitEmptyPasswords: Check = {
  id: 'sshd.permit-empty-passwords',
  title: 'sshd: logins with an empty password',
  severity: 'critical',
  guidelines: SSHD_GUIDES,
  async run(ctx) {
    const f = await facts(ctx);
    const out: Finding[] = [];
    const passwords = effective(f, 'passwordauthentication') === 'yes' || (effective(f, 'kbdinteractiveauthentication') === 'yes' && effective(f, 'usepam') === 'yes');
    if (effective(f, 'permitemptypasswords') === 'yes') {
      out.push(passwords
        ? finding('critical', 'sshd lets accounts with an empty password log in with no password at all (PermitEmptyPasswords yes)', settingEvidence(f, 'permitemptypasswords'))
        : finding('medium', 'PermitEmptyPasswords yes: accounts with an empty password could log in as soon as password logins are on', settingEvidence(f, 'permitemptypasswords')));
    }
    for (const e of matchLines(f, 'permitemptypasswords', /^yes\b/i)) {
      out.push(finding(passwords ? 'critical' : 'medium', 'a Match block permits empty passwords for the connections it matches', e));
    }
    return out;
  },
};

export const SSHD_CHECKS = [sshdAuthentication, sshdPasswordAuthentication, sshdKbdInteractive, sshdPermitRootLogin, sshdPermitEmptyPasswords];
