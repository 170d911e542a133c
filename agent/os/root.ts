import { lstat } from 'node:fs/promises';
import path from 'node:path';
import { ImprintError } from './errors.js';

/**
 * The tree imprint works on: "/" on a booted instance, or an offline image with --root.
 * Every system path goes through here so that no write can land outside the tree.
 */
export class RootTree {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = path.resolve(dir);
  }

  get isLive(): boolean {
    return this.dir === '/';
  }

  /** Host path of an absolute path inside the tree ("/etc/shadow" → "<root>/etc/shadow"). */
  path(inTree: string): string {
    if (!inTree.startsWith('/')) throw new ImprintError(`internal: path ${inTree} is not absolute`);
    const normal = path.posix.normalize(inTree);
    return this.isLive ? normal : path.join(this.dir, normal);
  }

  /** The in-tree path of a host path below the root, for messages and reports. */
  display(hostPath: string): string {
    if (this.isLive) return hostPath;
    const rel = path.relative(this.dir, hostPath);
    return rel.startsWith('..') ? hostPath : `/${rel}`;
  }

  /**
   * Refuses a path if any component below the root is a symlink, or an existing component is
   * not a directory. Components that do not exist yet are fine (they will be created by us).
   * This is what keeps an image from redirecting our writes (etc/ssh → /etc on the host).
   */
  async assertNoSymlinks(inTree: string): Promise<void> {
    const parts = path.posix.normalize(inTree).split('/').filter(Boolean);
    let current = this.isLive ? '/' : this.dir;
    for (let i = 0; i < parts.length; i += 1) {
      current = path.join(current, parts[i] as string);
      let info;
      try {
        info = await lstat(current);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw err;
      }
      if (info.isSymbolicLink()) {
        throw new ImprintError(`refusing ${this.display(current)}: it is a symlink (writes never follow links)`, 'unsafe-path');
      }
      const last = i === parts.length - 1;
      if (!last && !info.isDirectory()) {
        throw new ImprintError(`refusing ${inTree}: ${this.display(current)} is not a directory`, 'unsafe-path');
      }
    }
  }
}
