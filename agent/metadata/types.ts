import type { MetadataSourceName } from '../config.js';

// What the network phase learns about the instance, whichever source said it. Everything here
// is untrusted input: keys are raw text until the authorized-keys task has validated them.

export interface LaunchKey {
  /** Where the key came from, for messages: "public-keys/0" (EC2), "public_keys.mykey" (config drive). */
  origin: string;
  /** The key pair name, when the source gives one. */
  name: string;
  /** The raw key text exactly as served (may hold several lines, options, garbage). */
  text: string;
}

export interface IdentityDocument {
  /** The JSON document, exactly as served (the signature covers these bytes). */
  document: string;
  /** The base64 PKCS#7 (rsa2048) signature, without PEM armour. */
  pkcs7: string;
}

export interface InstanceMetadata {
  source: MetadataSourceName;
  instanceId: string;
  keys: LaunchKey[];
  /** null when the source says there are none (a 404 from EC2). */
  productCodes: string[] | null;
  /** Reads the signed identity document on demand (EC2 only; null elsewhere). */
  identityDocument: (() => Promise<IdentityDocument | null>) | null;
  /** Problems with single keys or values that were rejected, one line each (the rest is used). */
  rejected: string[];
}

/** The instance-id shape every source must respect before it keys the per-instance state. */
export const INSTANCE_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
