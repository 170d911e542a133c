#!/usr/bin/env python3
"""Runs one command the way systemd starts a Type=notify unit, and times it (test/bench/notify-boot.mjs).

Usage: notify-run.py --socket PATH --watch FILE --needle TEXT -- COMMAND [ARG...]

- NOTIFY_SOCKET: binds PATH (AF_UNIX, SOCK_DGRAM, SO_PASSCRED; Node cannot), gives it to the
  command in NOTIFY_SOCKET and timestamps every datagram on arrival. BARRIER=1's pipe (systemd-notify
  254+ sends one with READY) is closed at once, as systemd does.
- Key written: inotify (through libc, ctypes) on FILE's nearest existing ancestor, then each
  directory down to FILE as it appears; after every event, FILE is read and the first time it
  holds NEEDLE (the launch key's base64) is the "key written" time. No polling.
- Process exit: a pidfd on the direct child; os.wait4() then gives its rusage, which includes
  every descendant it (or they) reaped. This process is a child subreaper, so a descendant
  orphaned by the command comes to us; it is waited for (up to 10 s) and its rusage added.
  ru_maxrss is the largest of any single process in the tree (in practice the Node process); it
  counts file-backed pages too (the mapped executable). RssAnon of the direct child is sampled
  from /proc/PID/status every 20 ms at most (the peak may fall between two samples).

All times are CLOCK_MONOTONIC (time.monotonic_ns), in ms after the moment just before the fork.
Prints one JSON object on stdout.
"""
import ctypes
import ctypes.util
import json
import os
import select
import socket
import struct
import subprocess
import sys
import time

IN_MODIFY, IN_CLOSE_WRITE, IN_MOVED_TO, IN_CREATE = 0x2, 0x8, 0x80, 0x100
PR_SET_CHILD_SUBREAPER = 36


def parse_args(argv):
    opts = {}
    i = 0
    while i < len(argv) and argv[i] != "--":
        key = argv[i]
        if key not in ("--socket", "--watch", "--needle") or i + 1 >= len(argv):
            sys.exit(f"notify-run.py: bad argument {key!r}")
        opts[key[2:]] = argv[i + 1]
        i += 2
    if i >= len(argv) - 1 or "socket" not in opts:
        sys.exit("usage: notify-run.py --socket PATH [--watch FILE --needle TEXT] -- COMMAND [ARG...]")
    return opts, argv[i + 1:]


class KeyWatch:
    """Fires once when FILE holds NEEDLE, driven by inotify events on the path down to FILE."""

    def __init__(self, libc, target, needle):
        self.libc, self.target, self.needle = libc, target, needle.encode()
        self.fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        self.watched = set()
        self.found = False
        self.arm()

    def arm(self):
        # Watch every existing directory on the way down (a new .ssh must be seen as it appears).
        parts = []
        d = os.path.dirname(self.target)
        while not os.path.isdir(d):
            parts.append(d)
            d = os.path.dirname(d)
        for path in [d] + list(reversed(parts)):
            if path in self.watched or not os.path.isdir(path):
                continue
            if self.libc.inotify_add_watch(self.fd, path.encode(), IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE | IN_MODIFY) >= 0:
                self.watched.add(path)

    def check(self):
        if self.found:
            return True
        try:
            with open(self.target, "rb") as f:
                self.found = self.needle in f.read()
        except OSError:
            pass
        return self.found

    def on_readable(self):
        try:
            os.read(self.fd, 65536)
        except BlockingIOError:
            pass
        self.arm()
        return self.check()


def rss_anon_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def receive(sock, now, notes):
    data, ancdata, _flags, _addr = sock.recvmsg(65536, socket.CMSG_SPACE(12) + socket.CMSG_SPACE(16 * 4))
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            for fd in struct.unpack("%di" % (len(payload) // 4), payload[: len(payload) // 4 * 4]):
                os.close(fd)
    fields = {}
    for line in data.decode("utf-8", "replace").split("\n"):
        if "=" in line:
            k, v = line.split("=", 1)
            fields[k] = v
    notes.append({"t": now, "fields": fields})


def main():
    opts, command = parse_args(sys.argv[1:])
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    sock.bind(opts["socket"])
    watch = KeyWatch(libc, opts["watch"], opts["needle"]) if "watch" in opts else None

    env = dict(os.environ, NOTIFY_SOCKET=opts["socket"])
    notes = []
    t0 = time.monotonic_ns()
    ms = lambda: (time.monotonic_ns() - t0) / 1e6  # noqa: E731
    child = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    pidfd = os.pidfd_open(child.pid)
    key_ms = 0.0 if watch and watch.check() else None
    exit_ms = None
    stderr_chunks = []
    os.set_blocking(child.stderr.fileno(), False)
    fds = [sock, pidfd, child.stderr] + ([watch.fd] if watch else [])
    peak_anon = 0
    while exit_ms is None:
        # Every 20 ms at most, RssAnon of the direct child (ru_maxrss below also counts the pages
        # of its executable file that are mapped in, which depend on the page cache, not on imprint).
        readable, _, _ = select.select(fds, [], [], 0.02)
        peak_anon = max(peak_anon, rss_anon_kib(child.pid))
        now = ms()
        if sock in readable:
            receive(sock, now, notes)
        if watch and watch.fd in readable and key_ms is None and watch.on_readable():
            key_ms = now
        if child.stderr in readable:
            chunk = child.stderr.read()
            if chunk:
                stderr_chunks.append(chunk)
            else:
                fds.remove(child.stderr)
        if pidfd in readable:
            exit_ms = now
    _pid, status, usage = os.wait4(child.pid, 0)
    user, system, maxrss = usage.ru_utime, usage.ru_stime, usage.ru_maxrss
    # Orphans of the command (re-parented to us, the subreaper): waited for, counted, added.
    orphans = []
    deadline = time.monotonic() + 10
    while True:
        try:
            # WNOWAIT first: the zombie's /proc/PID/comm names it before it is reaped.
            peek = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            break
        if peek is None:
            if time.monotonic() > deadline:
                break
            time.sleep(0.01)
            continue
        try:
            with open(f"/proc/{peek.si_pid}/comm") as f:
                orphans.append(f.read().strip())
        except OSError:
            orphans.append("?")
        _pid, _st, ru = os.wait4(peek.si_pid, 0)
        user, system, maxrss = user + ru.ru_utime, system + ru.ru_stime, max(maxrss, ru.ru_maxrss)
    sock.setblocking(False)
    while True:
        try:
            receive(sock, ms(), notes)
        except BlockingIOError:
            break
    if watch and key_ms is None and watch.check():
        key_ms = ms()  # written without an event we saw (should not happen); counted at the end
    try:
        rest = child.stderr.read()
        if rest:
            stderr_chunks.append(rest)
    except (BlockingIOError, ValueError):
        pass
    ready = next((n["t"] for n in notes if n["fields"].get("READY") == "1"), None)
    print(json.dumps({
        "exitCode": os.waitstatus_to_exitcode(status),
        "readyMs": ready,
        "keyMs": key_ms,
        "exitMs": exit_ms,
        "cpuMs": (user + system) * 1000,
        "userMs": user * 1000,
        "sysMs": system * 1000,
        "maxRssKiB": maxrss,
        "peakRssAnonKiB": peak_anon,
        "orphans": orphans,
        "notifications": notes,
        "stderr": b"".join(stderr_chunks).decode("utf-8", "replace")[-2000:],
    }))
    sock.close()
    os.unlink(opts["socket"])


main()
