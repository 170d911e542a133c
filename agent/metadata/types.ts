import type { MetadataSourceName } from '../config.js';
import type { PlatformName } from './platforms/names.js';

// What the network phase learns about the instance, whichever source said it. Everything here
// is untrusted input: keys are raw text until the authorized-keys task has validated them.

export interface LaunchKey {
  /** Where the key came from, for messages: "public-keys/0" (EC2), "public_keys.mykey" (config drive). */
  origin: string;
  /** The key pair name, when the source gives one. */
  name: string;
  /** The raw key text exactly as served (may hold several lines, options, garbage). */
  text: string;
  /** The login the platform gives this key to (GCE "user:key", Azure adminUsername); absent: the configured user. */
  user?: string;
}

export interface IdentityDocument {
  /** The JSON document, exactly as served (the signature covers these bytes). */
  document: string;
  /** The base64 PKCS#7 (rsa2048) signature, without PEM armour. */
  pkcs7: string;
}

export interface InstanceMetadata {
  source: MetadataSourceName | PlatformName;
  instanceId: string;
  keys: LaunchKey[];
  /** null when the source says there are none (a 404 from EC2). */
  productCodes: string[] | null;
  /** Reads the signed identity document on demand (EC2 only; null elsewhere). */
  identityDocument: (() => Promise<IdentityDocument | null>) | null;
  /** Problems with single keys or values that were rejected, one line each (the rest is used). */
  rejected: string[];
  /** The host name the platform gives the instance, untrusted text (the hostname task checks it). */
  hostname?: string;
  /** The login user the platform names (Azure adminUsername, OpenNebula USERNAME), unchecked. */
  defaultUser?: string;
  /** Tells the platform the instance is up (Azure's wireserver); resolves to a line for the report. */
  reportReady?: () => Promise<string>;
}

/** The instance-id shape every source must respect before it keys the per-instance state. */
export const INSTANCE_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
