import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

// A hostile image's NSS module, built at test time with gcc: its constructor breaks out of any
// chroot it was loaded in (the classic root escape: chroot into a subdirectory, climb out with
// a descriptor of the old root), appends to a marker file OUTSIDE the tree, and ends the
// process at once (_exit), so that the tool that loaded it never goes on to write anything with
// the host as its root. The tree's nsswitch.conf names it for passwd, group and shadow.

const SOURCE = `
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
__attribute__((constructor)) static void imprint_test_evil(void) {
  int top = open("/", O_RDONLY | O_DIRECTORY);
  mkdir("/.evil-escape", 0700);
  if (top >= 0 && chroot("/.evil-escape") == 0 && fchdir(top) == 0) {
    for (int i = 0; i < 64; i++) chdir("..");
    chroot(".");
  }
  FILE *f = fopen(MARKER, "a");
  if (f) { fputs("the image's NSS module ran\\n", f); fclose(f); }
  _exit(97);
}
`;

export interface EvilNss {
  /** Host path of the marker file; it exists only if the module was loaded. */
  marker: string;
  /** Whether the module ran (the marker exists). */
  ran(): Promise<boolean>;
  cleanup(): Promise<void>;
}

/** Builds the module and plants it, with an nsswitch.conf naming it, in the tree at `root`. */
export async function plantEvilNss(root: string): Promise<EvilNss> {
  const outside = await mkdtemp(path.join(tmpdir(), 'imprint-evil-'));
  const marker = path.join(outside, 'marker');
  const src = path.join(outside, 'evil.c');
  await writeFile(src, SOURCE);
  const lib = path.join(outside, 'libnss_evil.so.2');
  await promisify(execFile)('gcc', ['-shared', '-fPIC', `-DMARKER="${marker}"`, '-o', lib, src]);
  for (const dir of ['lib/x86_64-linux-gnu', 'usr/lib/x86_64-linux-gnu', 'lib64']) {
    await mkdir(path.join(root, dir), { recursive: true });
    await writeFile(path.join(root, dir, 'libnss_evil.so.2'), await readFile(lib), { mode: 0o755 });
  }
  await writeFile(path.join(root, 'etc/nsswitch.conf'), 'passwd: evil files\ngroup: evil files\nshadow: evil files\ngshadow: evil files\n');
  return {
    marker,
    ran: () => readFile(marker).then(() => true, () => false),
    cleanup: () => rm(outside, { recursive: true, force: true }),
  };
}
