// A seccomp filter (classic BPF, the format bwrap --seccomp reads) for code of an image that
// imprint runs in its sandbox. The sandbox already leaves that code no capability and no host
// path; the filter is a second wall behind it: the system calls that reach kernel attack
// surface or could rebuild privilege (mount, namespaces, ptrace, keyrings, bpf, modules) fail
// with EPERM, and a call from another ABI (x32, a foreign architecture) kills the process.
// sshd -T needs none of them.

const LD_W_ABS = 0x20;
const JEQ_K = 0x15;
const JGE_K = 0x35;
const RET_K = 0x06;
const RET_ALLOW = 0x7fff0000;
const RET_KILL_PROCESS = 0x80000000;
const RET_EPERM = 0x00050000 | 1;
const OFFSET_NR = 0;
const OFFSET_ARCH = 4;
const X32_BIT = 0x40000000;

interface ArchTable {
  audit: number;
  /** The ABI bit of x32 calls made through the x86-64 entry point, refused as a whole. */
  x32?: boolean;
  blocked: Record<string, number>;
}

// Numbers from the kernel's syscall tables (arch/x86/entry/syscalls/syscall_64.tbl and
// include/uapi/asm-generic/unistd.h); the new mount API calls share numbers on both.
const MOUNT_API = { open_tree: 428, move_mount: 429, fsopen: 430, fsconfig: 431, fsmount: 432, fspick: 433, mount_setattr: 442 };
const TABLES: Record<string, ArchTable> = {
  x64: {
    audit: 0xc000003e,
    x32: true,
    blocked: {
      ptrace: 101, syslog: 103, chroot: 161, acct: 163, settimeofday: 164, mount: 165, umount2: 166, swapon: 167, swapoff: 168, reboot: 169,
      pivot_root: 155, init_module: 175, delete_module: 176, quotactl: 179, clock_settime: 227, kexec_load: 246, add_key: 248,
      request_key: 249, keyctl: 250, unshare: 272, perf_event_open: 298, name_to_handle_at: 303, open_by_handle_at: 304, setns: 308,
      process_vm_readv: 310, process_vm_writev: 311, finit_module: 313, kexec_file_load: 320, bpf: 321, userfaultfd: 323, ...MOUNT_API,
    },
  },
  arm64: {
    audit: 0xc00000b7,
    blocked: {
      umount2: 39, mount: 40, pivot_root: 41, chroot: 51, quotactl: 60, acct: 89, unshare: 97, kexec_load: 104, init_module: 105,
      delete_module: 106, clock_settime: 112, syslog: 116, ptrace: 117, reboot: 142, settimeofday: 170, add_key: 217, request_key: 218,
      keyctl: 219, swapon: 224, swapoff: 225, perf_event_open: 241, name_to_handle_at: 264, open_by_handle_at: 265, setns: 268,
      process_vm_readv: 270, process_vm_writev: 271, finit_module: 273, bpf: 280, userfaultfd: 282, kexec_file_load: 294, ...MOUNT_API,
    },
  },
};

function instruction(code: number, jt: number, jf: number, k: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt16LE(code, 0);
  b.writeUInt8(jt, 2);
  b.writeUInt8(jf, 3);
  b.writeUInt32LE(k >>> 0, 4);
  return b;
}

/** The compiled filter for this machine's architecture, or null where imprint has no table for it. */
export function sandboxSeccompFilter(arch: string = process.arch): Buffer | null {
  const table = TABLES[arch];
  if (!table) return null;
  const numbers = [...new Set(Object.values(table.blocked))];
  // Layout: [ld arch, jeq arch, ld nr, (jge x32), jeq nr × n, ret allow, ret eperm, ret kill]
  const checks = numbers.length + (table.x32 ? 1 : 0);
  const allow = 3 + checks;
  const eperm = allow + 1;
  const kill = eperm + 1;
  const prog: Buffer[] = [
    instruction(LD_W_ABS, 0, 0, OFFSET_ARCH),
    instruction(JEQ_K, 0, kill - 2, table.audit),
    instruction(LD_W_ABS, 0, 0, OFFSET_NR),
  ];
  if (table.x32) prog.push(instruction(JGE_K, kill - 4, 0, X32_BIT));
  for (const nr of numbers) prog.push(instruction(JEQ_K, eperm - (prog.length + 1), 0, nr));
  prog.push(instruction(RET_K, 0, 0, RET_ALLOW), instruction(RET_K, 0, 0, RET_EPERM), instruction(RET_K, 0, 0, RET_KILL_PROCESS));
  return Buffer.concat(prog);
}
