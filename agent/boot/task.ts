import type { Config } from '../config.js';
import type { RootTree } from '../os/root.js';
import type { LocalIdentity } from '../os/identity.js';
import type { InstanceMetadata } from '../metadata/types.js';
import type { PendingHostKeys } from '../tasks/host-keys.js';
import type { TaskRecorder } from './report.js';

/** Facts one task learns that a later task needs; the engine orders tasks so they are there. */
export interface Facts {
  /** What the metadata source said (network phase). */
  metadata?: InstanceMetadata;
  /** Host keys still being generated when the host-keys task ended. */
  pendingHostKeys?: PendingHostKeys;
  /** Called by host-keys once its ssh-keygen children run (the engine starts the network phase then). */
  keygenStarted?: () => void;
}

export interface TaskContext {
  root: RootTree;
  config: Config;
  instance: LocalIdentity;
  facts: Facts;
}

/** local: before sshd may start; network: needs metadata; late: after both, off sshd's path. */
export type TaskPhase = 'local' | 'network' | 'late';

export interface Task {
  name: string;
  phase: TaskPhase;
  /** Tasks of the same phase that must finish first; the others run concurrently. */
  after: readonly string[];
  /** Of those, the ones that must have succeeded; if one failed, this task is skipped. */
  needs?: readonly string[];
  /** Runs on past the end of its phase (sshd may start meanwhile); awaited before boot ends. */
  background?: boolean;
  /** Runs at every boot (the disk may have grown since), not once per instance. */
  everyBoot?: boolean;
  /**
   * Network tasks only: what the platform may offer (its users, host name, ready report). When no
   * source answers, such a task is skipped, not failed: the failure is the metadata's, and the
   * tasks that need it (the launch keys) say so.
   */
  ifMetadata?: boolean;
  /** Why the task is off in this config, or null when it runs. */
  disabledBecause(config: Config): string | null;
  /** Lines saying what run() would do, without changing anything (--dry-run). */
  plan(ctx: TaskContext): Promise<string[]>;
  /** Does the work; says each action through the recorder; throws on failure. */
  run(ctx: TaskContext, rec: TaskRecorder): Promise<'skipped' | undefined | void>;
}
