#!/usr/bin/env python3
"""A stand-in for systemd's NOTIFY_SOCKET (Node cannot receive AF_UNIX datagrams).

Usage: notify-listener.py SOCKET_PATH
Binds SOCKET_PATH (SOCK_DGRAM, SO_PASSCRED), prints "listening", then one JSON line per
datagram: {"pid": <sender PID from SCM_CREDENTIALS>, "fields": {"READY": "1", ...}}. On SIGTERM
it reads what is still queued (without waiting) and exits 0.
"""
import json
import os
import select
import signal
import socket
import struct
import sys

path = sys.argv[1]
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
sock.bind(path)
stopping = False


def stop(_signum, _frame):
    global stopping
    stopping = True


signal.signal(signal.SIGTERM, stop)
print("listening", flush=True)


def receive_one():
    data, ancdata, _flags, _addr = sock.recvmsg(65536, socket.CMSG_SPACE(12) + socket.CMSG_SPACE(16 * 4))
    pid = None
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid, _uid, _gid = struct.unpack("3i", payload[:12])
        elif level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            # BARRIER=1 comes with a pipe: closing it tells systemd-notify all before it was read.
            for fd in struct.unpack("%di" % (len(payload) // 4), payload[: len(payload) // 4 * 4]):
                os.close(fd)
    fields = {}
    for line in data.decode("utf-8", "replace").split("\n"):
        if "=" in line:
            key, value = line.split("=", 1)
            fields[key] = value
    print(json.dumps({"pid": pid, "fields": fields}), flush=True)


while not stopping:
    try:
        ready, _, _ = select.select([sock], [], [], 0.2)
    except InterruptedError:
        continue
    if ready:
        receive_one()

sock.setblocking(False)
while True:
    try:
        receive_one()
    except BlockingIOError:
        break
sock.close()
os.unlink(path)
