import type { Evidence, FactValue, Finding, Guideline, Severity } from './types.js';

// The guideline sections (shared/seeds) the checks implement, named once.

const CLEANUP = 'outscale-cleanup-public-omis.txt';
const BAKING = 'outscale-baking-omis.txt';
const EGI = 'egi-vm-image-endorsement.txt';
const AWS = 'aws-protecting-shared-ami.txt';
const EUCA = 'eucalyptus-instance-best-practices.txt';

export const G = {
  sshKeysOnly: { source: CLEANUP, section: 'Remote access: Enable SSH with SSH keys only' },
  sshRootLogin: { source: CLEANUP, section: 'Remote access: If the OMI is not meant to be accessed as root (PermitRootLogin)' },
  awsRootLogin: { source: AWS, section: 'Disable Password-Based Logins for Root (PermitRootLogin without-password)' },
  bakingSshd: { source: BAKING, section: 'General Guidelines: Configure sshd to allow only public key authentication' },
  egiSsh: { source: EGI, section: 'Configuration: SSH: disable password authentication' },
  extraKeys: { source: CLEANUP, section: 'Remote access: Check that no extra SSH key is included' },
  extraUsers: { source: CLEANUP, section: 'Remote access: Check that no extra user is included' },
  bakingPasswords: { source: BAKING, section: 'General Guidelines: Remove and disable passwords for all user accounts' },
  egiRootPassword: { source: EGI, section: 'Configuration: root password must be disabled' },
  egiDefaults: { source: EGI, section: 'Configuration: installed services don\'t use default passwords and accounts' },
  bakingDefaults: { source: BAKING, section: 'Guidelines for All OMIs: no default internal accounts and passwords' },
  eucaLock: { source: EUCA, section: 'Image Creation: Lock down passwords of the root and non-root default users' },
  services: { source: CLEANUP, section: 'Launch of extra services: Check that no unwanted behavior is configured' },
  egiServices: { source: EGI, section: 'Configuration: Disable all services unless necessary (no running services apart from sshd)' },
  cleartext: { source: BAKING, section: 'Guidelines for All OMIs: Disable services and protocols that authenticate users in clear text' },
  processes: { source: CLEANUP, section: 'Advanced checks for high-security needs: Check running processes' },
  ports: { source: CLEANUP, section: 'Advanced checks for high-security needs: Check open ports (with the program path)' },
  egiNmap: { source: EGI, section: 'Vulnerability assessment: Nmap should show only intended open ports (TCP and UDP)' },
  crons: { source: CLEANUP, section: 'Advanced checks for high-security needs: Check crons (user crons, recurrent crons, crontab)' },
  commands: { source: CLEANUP, section: 'Launch of extra services: Check that no unwanted commands are run (bashrc, for each user)' },
  logging: { source: CLEANUP, section: 'Check crons: a configuration file listing all logging services' },
  hostKeys: { source: BAKING, section: 'Remove SSH Host Key Pairs; Generate a unique SSH host key on instance creation' },
  awsHostKeys: { source: AWS, section: 'Remove SSH Host Key Pairs' },
  credentials: { source: BAKING, section: 'Securely delete credentials, key material, user SSH key pairs, shell history' },
  egiCredentials: { source: EGI, section: 'Configuration: Delete any credential, passwords, accounts or X509 certificate/proxy' },
  awsHistory: { source: AWS, section: 'Always delete the shell history before bundling; keep private keys and X.509 certificates out' },
  firewall: { source: EGI, section: 'Configuration: firewall config (iptables, also on IPv6) minimally open' },
} satisfies Record<string, Guideline>;

/** A finding with its evidence; values are redacted by the runner. */
export function finding(severity: Severity, message: string, evidence: Evidence, facts?: Record<string, FactValue>): Finding {
  return facts === undefined ? { severity, message, evidence } : { severity, message, evidence, facts };
}

export function ev(path: string, line: number | null, value: string): Evidence {
  return { path, line, value };
}
