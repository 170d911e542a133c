#!/usr/bin/env python3
"""Run a command as a child subreaper and report what it left behind.

Usage: reaper.py REPORT_FILE COMMAND [ARG...]
Runs COMMAND (stdio inherited), waits for it, then reaps every descendant it orphaned (they
are re-parented here, PR_SET_CHILD_SUBREAPER) and writes {"pid", "code", "orphans"} to
REPORT_FILE as JSON, each orphan with its command name (read before it is reaped). An orphan
is a child process COMMAND did not wait for before it exited: for imprint, a systemd-notify
still sending (or not yet reaped) when imprint was gone.
Exits with COMMAND's status.
"""
import ctypes
import json
import os
import subprocess
import sys

PR_SET_CHILD_SUBREAPER = 36
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
    sys.exit("reaper: prctl(PR_SET_CHILD_SUBREAPER) failed")
child = subprocess.Popen(sys.argv[2:])
code = child.wait()
orphans = []
while True:
    try:
        # WNOWAIT: the zombie stays until its name is read, then it is reaped.
        info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOWAIT)
    except ChildProcessError:
        break
    if info is None:
        break
    try:
        with open(f"/proc/{info.si_pid}/comm") as f:
            comm = f.read().strip()
    except OSError:
        comm = "?"
    os.waitpid(info.si_pid, 0)
    orphans.append({"pid": info.si_pid, "comm": comm})
with open(sys.argv[1], "w") as report:
    json.dump({"pid": child.pid, "code": code, "orphans": orphans}, report)
sys.exit(code if code >= 0 else 128 - code)
