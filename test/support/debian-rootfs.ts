// A real Debian root filesystem for integration tests and benchmarks: the release matrix is
// Debian 11 (bullseye), 12 (bookworm, the default) and 13 (trixie).
//
// debianRootfsTarball(suite) runs test/support/debian-rootfs.sh, which builds the
// tarball once with mmdebstrap (~40 s, needs root and the Debian mirror) and
// then answers from its cache (default /var/cache/imprint-test, override with
// IMPRINT_ROOTFS_CACHE) in milliseconds. Call it from a `before` hook with a
// generous timeout, e.g. `this.timeout(300_000)`, and skip when it gives null.
//
// The image is a typical *unsealed* one: root and "debian" (in group sudo)
// have password "imagepass" as SHA512 hashes, baked SSH host keys (rsa, ecdsa,
// ed25519), /etc/machine-id = IMAGE_MACHINE_ID. See the script for details.

import { execFile } from "node:child_process";
import { mkdtemp, readFile, realpath, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { isAbsolute, join, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

const SCRIPT = fileURLToPath(new URL("./debian-rootfs.sh", import.meta.url));

/** Exit code of the script when this machine cannot build (no mmdebstrap / not root). */
const EXIT_CANNOT_BUILD = 3;

export const IMAGE_PASSWORD = "imagepass";
export const IMAGE_USER = "debian";
export const IMAGE_MACHINE_ID = "5e1f0c0ffee0b4ed1d0000000000d12a";

const UNPACK_PREFIX = "imprint-rootfs-";

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

function run(file: string, args: readonly string[], timeoutMs: number): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    execFile(
      file,
      args,
      { encoding: "utf8", maxBuffer: 64 * 1024 * 1024, timeout: timeoutMs, killSignal: "SIGTERM" },
      (error, stdout, stderr) => {
        if (error === null) {
          resolvePromise({ code: 0, stdout, stderr });
          return;
        }
        const code: unknown = (error as { code?: unknown }).code;
        if (typeof code === "number") {
          resolvePromise({ code, stdout, stderr });
          return;
        }
        // ENOENT for the program, killed by timeout/signal, maxBuffer exceeded.
        const signal = (error as { signal?: string | null }).signal;
        reject(
          new Error(
            `${file} ${args.join(" ")} failed: ${error.message}` +
              (signal ? ` (signal ${signal})` : "") +
              tail(stderr),
          ),
        );
      },
    );
  });
}

function tail(text: string, lines = 40): string {
  const kept = text.trimEnd().split("\n").slice(-lines).join("\n");
  return kept === "" ? "" : `\n--- stderr (last ${lines} lines) ---\n${kept}`;
}

export type DebianSuite = 'bullseye' | 'bookworm' | 'trixie';

/** The release matrix, oldest first, with what each ships (what the tests are about). */
export const DEBIAN_RELEASES: readonly { suite: DebianSuite; release: number; openssh: string; systemd: number }[] = [
  { suite: 'bullseye', release: 11, openssh: '8.4', systemd: 247 },
  { suite: 'bookworm', release: 12, openssh: '9.2', systemd: 252 },
  { suite: 'trixie', release: 13, openssh: '10.0', systemd: 257 },
];

const cached = new Map<DebianSuite, Promise<string | null>>();

/**
 * Path of the cached Debian rootfs tarball of a suite (default bookworm), building it first if needed.
 * Resolves to null (with the reason on stderr) when the tarball is not cached
 * and this machine cannot build it: mmdebstrap missing, or not root.
 * Rejects when a build was attempted and failed. Memoized per process.
 */
export function debianRootfsTarball(suite: DebianSuite = "bookworm"): Promise<string | null> {
  let found = cached.get(suite);
  if (found === undefined) {
    found = locateOrBuild(suite).catch((error: unknown) => {
      cached.delete(suite); // let a later caller retry after a failure
      throw error;
    });
    cached.set(suite, found);
  }
  return found;
}

async function locateOrBuild(suite: DebianSuite): Promise<string | null> {
  // Building takes ~40 s on a warm mirror and a quiet machine (10 min seen on a loaded one).
  const result = await run("/bin/bash", [SCRIPT, suite], 20 * 60 * 1000);
  if (result.code === EXIT_CANNOT_BUILD) {
    const reason = result.stderr.trim().replace(/^debian-rootfs: /gm, "") || "mmdebstrap unavailable";
    process.stderr.write(`debian-rootfs: no Debian ${suite} rootfs available, skipping: ${reason}\n`);
    return null;
  }
  if (result.code !== 0) {
    throw new Error(`${SCRIPT} exited with status ${result.code}${tail(result.stderr)}`);
  }
  const lines = result.stdout.split("\n").filter((line) => line !== "");
  const path = lines[0];
  if (lines.length !== 1 || path === undefined || !isAbsolute(path) || !path.endsWith(".tar")) {
    throw new Error(`${SCRIPT} printed an unexpected result: ${JSON.stringify(result.stdout)}`);
  }
  return path;
}

/**
 * Unpack the tarball into a new directory under os.tmpdir() and return it.
 * As root, owners, modes and the /dev nodes are kept (tar --numeric-owner -xpf).
 * As non-root, ./dev/* is skipped (mknod needs root) and everything is owned
 * by the caller, so ownership checks are meaningless there.
 */
export async function unpackRootfs(tarball: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), UNPACK_PREFIX));
  const args = ["--numeric-owner", "-xpf", tarball, "-C", dir];
  if (process.getuid?.() !== 0) args.push("--exclude=./dev/*");
  try {
    const result = await run("tar", args, 5 * 60 * 1000);
    if (result.code !== 0) {
      throw new Error(`tar ${args.join(" ")} exited with status ${result.code}${tail(result.stderr)}`);
    }
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return dir;
}

/**
 * Remove a tree made by unpackRootfs (or any scratch dir under os.tmpdir()).
 * Refuses paths outside os.tmpdir(), and trees with anything mounted inside
 * (a test that bind-mounted /dev or /proc into the root and forgot to unmount
 * would otherwise have the host's files deleted through the mount).
 */
export async function removeTree(dir: string): Promise<void> {
  const base = await realpath(tmpdir());
  let target: string;
  try {
    target = await realpath(resolve(dir));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
    throw error;
  }
  if (target === base || !target.startsWith(base + sep)) {
    throw new Error(`removeTree: refusing to remove ${dir}: not inside ${base}`);
  }
  const mounted = await mountPointsUnder(target);
  if (mounted.length > 0) {
    throw new Error(`removeTree: refusing to remove ${dir}: mounted inside: ${mounted.join(", ")}`);
  }
  await rm(target, { recursive: true, force: true });
}

async function mountPointsUnder(dir: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile("/proc/self/mountinfo", "utf8");
  } catch {
    return [];
  }
  const found: string[] = [];
  for (const line of text.split("\n")) {
    const field = line.split(" ")[4];
    if (field === undefined) continue;
    // mountinfo escapes space, tab, newline and backslash as \ooo.
    const mountPoint = field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
    if (mountPoint === dir || mountPoint.startsWith(dir + sep)) found.push(mountPoint);
  }
  return found;
}
