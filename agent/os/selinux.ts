import { mkdtemp, copyFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ImprintError } from './errors.js';
import { run } from './exec.js';
import type { RootTree } from './root.js';
import { readTreeText, statTree } from './files.js';

// SELinux file contexts for what imprint creates or replaces. A file made by renaming a temp
// file gets the label of the temp file's creation (the directory's default, or the process's
// type), not the one the policy names for the final path: on an enforcing RHEL-family image,
// sshd may then be denied ~/.ssh/authorized_keys (ssh_home_t) or /etc/ssh files. So every
// path imprint writes is relabelled to what the policy says, right after it is in place:
//  - live system, SELinux enabled (`selinuxenabled` exits 0): restorecon with the system's
//    policy (restorecon never follows a link at the path itself);
//  - tree (--root): when its /etc/selinux/config says SELINUX=enforcing or permissive and
//    that policy's contexts/files/file_contexts exists, this machine's `setfiles -r ROOT`
//    with a copy of the image's text file_contexts (and .homedirs, .local beside it): copies,
//    so that no precompiled file_contexts.bin from the image is ever loaded, and nothing of
//    the image runs. setfiles labels a tree whatever this machine's kernel is.
// Elsewhere (no SELinux, disabled, no policy files) nothing runs.

export type SelinuxMode =
  | { kind: 'off'; why: string }
  | { kind: 'live' }
  /** fileContexts: the host path of the image's text file_contexts. */
  | { kind: 'tree'; fileContexts: string; policy: string };

/** SELINUX= and SELINUXTYPE= from an /etc/selinux/config text (shell-style KEY=value lines). */
export function parseSelinuxConfig(text: string): { mode: string | null; type: string } {
  let mode: string | null = null;
  let type = 'targeted';
  for (const raw of text.split('\n')) {
    const m = /^\s*(SELINUX|SELINUXTYPE)\s*=\s*["']?([^\s#"']*)["']?\s*(?:#.*)?$/.exec(raw);
    if (!m) continue;
    if (m[1] === 'SELINUX') mode = (m[2] as string).toLowerCase();
    else if (m[2]) type = m[2];
  }
  return { mode, type };
}

const cache = new Map<string, Promise<SelinuxMode>>();

async function detect(root: RootTree): Promise<SelinuxMode> {
  if (root.isLive) {
    try {
      const r = await run('selinuxenabled', [], { okCodes: [1], timeoutMs: 10_000 });
      return r.code === 0 ? { kind: 'live' } : { kind: 'off', why: 'selinuxenabled: SELinux is disabled' };
    } catch {
      return { kind: 'off', why: 'selinuxenabled is not installed (no SELinux userland)' };
    }
  }
  const config = await readTreeText(root, '/etc/selinux/config').catch(() => null);
  if (config === null) return { kind: 'off', why: 'no /etc/selinux/config in the tree' };
  const { mode, type } = parseSelinuxConfig(config);
  if (mode !== 'enforcing' && mode !== 'permissive') return { kind: 'off', why: `/etc/selinux/config says SELINUX=${mode ?? '(unset)'}` };
  if (!/^[A-Za-z0-9_.-]+$/.test(type) || type === '.' || type === '..') return { kind: 'off', why: `SELINUXTYPE=${type} is not a policy name` };
  const inTree = `/etc/selinux/${type}/contexts/files/file_contexts`;
  const info = await statTree(root, inTree).catch(() => null);
  if (!info?.isFile()) return { kind: 'off', why: `SELINUX=${mode} but ${inTree} is missing` };
  return { kind: 'tree', fileContexts: root.path(inTree), policy: type };
}

/** Whether and how contexts are restored in this tree (decided once per tree and run). */
export function selinuxMode(root: RootTree): Promise<SelinuxMode> {
  let mode = cache.get(root.dir);
  if (!mode) {
    mode = detect(root);
    cache.set(root.dir, mode);
  }
  return mode;
}

/** Forgets the decisions (tests change a tree's /etc/selinux between runs). */
export function forgetSelinuxMode(): void {
  cache.clear();
}

/** Copies the image's text file_contexts (and its .homedirs/.local companions) to a private dir. */
async function privateSpec(fileContexts: string): Promise<{ spec: string; dir: string }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'imprint-fc-'));
  const spec = path.join(dir, 'file_contexts');
  await copyFile(fileContexts, spec);
  for (const extra of ['.homedirs', '.local']) {
    await copyFile(`${fileContexts}${extra}`, `${spec}${extra}`).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }
  return { spec, dir };
}

/**
 * Sets the policy's contexts on paths imprint just created or replaced (in-tree paths, files
 * and directories, not recursive). Does nothing where SELinux is off. Throws an ImprintError
 * naming the paths when the relabel fails: a wrong label can keep sshd from reading the file.
 */
export async function restoreContexts(root: RootTree, inTreePaths: readonly string[]): Promise<void> {
  if (inTreePaths.length === 0) return;
  const mode = await selinuxMode(root);
  if (mode.kind === 'off') return;
  const hostPaths = inTreePaths.map((p) => root.path(p));
  try {
    if (mode.kind === 'live') {
      await run('restorecon', ['--', ...hostPaths], { timeoutMs: 60_000 });
      return;
    }
    const { spec, dir } = await privateSpec(mode.fileContexts);
    try {
      await run('setfiles', ['-r', root.dir, spec, ...hostPaths], { timeoutMs: 60_000 });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  } catch (err) {
    throw new ImprintError(`SELinux contexts of ${inTreePaths.join(', ')} could not be restored (${mode.kind === 'live' ? 'restorecon' : `setfiles with the ${mode.policy} policy`}): ${err instanceof Error ? err.message : String(err)}`);
  }
}
