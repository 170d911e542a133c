import type { Config } from '../config.js';

// What "keys only" means as sshd_config lines. ChallengeResponseAuthentication is written too:
// before OpenSSH 8.7 it governed keyboard-interactive logins on its own; since then it is an
// alias, and the same "no" is harmless.

export interface Setting {
  keyword: string;
  value: string;
  /** Must hold in `sshd -T` afterwards, or the task fails (the security settings). */
  required: boolean;
  /** For an operator's extra setting (sshd.settings): where it stands in the config, "file:line:col". */
  from?: string;
}

/** Keywords sshd treats as one setting: the first of either that it reads wins. */
const ALIASES: Record<string, string[]> = {
  kbdinteractiveauthentication: ['kbdinteractiveauthentication', 'challengeresponseauthentication'],
  challengeresponseauthentication: ['kbdinteractiveauthentication', 'challengeresponseauthentication'],
};

export function aliasesOf(key: string): string[] {
  return ALIASES[key] ?? [key];
}

export function permitRootLogin(config: Config): string {
  const setting = config.sshd.permitRootLogin;
  if (setting !== 'auto') return setting;
  return config.defaultUser ? 'no' : 'prohibit-password';
}

export function desiredSettings(config: Config): Setting[] {
  return [
    { keyword: 'PasswordAuthentication', value: 'no', required: true },
    { keyword: 'KbdInteractiveAuthentication', value: 'no', required: true },
    { keyword: 'ChallengeResponseAuthentication', value: 'no', required: false },
    { keyword: 'PermitEmptyPasswords', value: 'no', required: true },
    { keyword: 'PubkeyAuthentication', value: 'yes', required: true },
    { keyword: 'PermitRootLogin', value: permitRootLogin(config), required: true },
    { keyword: 'UseDNS', value: config.sshd.useDns ? 'yes' : 'no', required: false },
    ...Object.entries(config.sshd.settings).map(([keyword, value]) => ({
      keyword, value, required: false, from: config.sshd.settingsAt?.[keyword] ?? `${config.source ?? 'imprint.yaml'}: sshd.settings.${keyword}`,
    })),
  ];
}

/** Values as sshd -T prints them ("without-password" is the old spelling of prohibit-password). */
export function normalValue(value: string): string {
  const v = value.trim().toLowerCase();
  return v === 'without-password' ? 'prohibit-password' : v;
}
