#!/usr/bin/env python3
"""Memory a tessera server holds for connections that send a large, never finished request head.

Starts `tessera serve` (the binary given) on a fresh SQLite database, opens CONNECTIONS
connections, and on each sends HEAD_BYTES of one header line that never ends. Reports the
server's resident memory (VmRSS) before, at its peak while the connections are open (VmHWM),
and two seconds after they are closed, in MiB.

    bench/slow_headers.py target/release/tessera [--connections 1000] [--head-kib 380]
"""

import argparse
import os
import select
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tessera")
    ap.add_argument("--connections", type=int, default=1000)
    ap.add_argument("--head-kib", type=int, default=380)
    args = ap.parse_args()

    port = free_port()
    tmp = tempfile.mkdtemp()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    env.update(
        TESSERA_LISTEN=f"127.0.0.1:{port}",
        TESSERA_DATABASE_URL=f"sqlite://{tmp}/bench.db",
        TESSERA_SECRET="bench-sealing-secret-not-for-production",
        # Long enough that the head timeout does not end the test early.
        TESSERA_HEADER_READ_TIMEOUT="120",
        RUST_LOG="warn",
    )
    server = subprocess.Popen([args.tessera, "serve"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health/alive", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        before = status_kib(server.pid, "VmRSS")

        head = b"GET /health/alive HTTP/1.1\r\nHost: tessera\r\nX-Pad: "
        total = args.head_kib * 1024
        socks = []
        for _ in range(args.connections):
            s = socket.create_connection(("127.0.0.1", port))
            s.setblocking(False)
            socks.append([s, 0])
        chunk = head + b"a" * 65536
        deadline = time.time() + 60
        while time.time() < deadline:
            pending = [c for c in socks if c[1] < total and c[0] is not None]
            if not pending:
                break
            poller = select.poll()
            for c in pending:
                poller.register(c[0], select.POLLOUT)
            writable = {fd for fd, _ in poller.poll(1000)}
            for c in pending:
                if c[0].fileno() not in writable:
                    continue
                data = chunk if c[1] == 0 else chunk[len(head):]
                try:
                    c[1] += c[0].send(data[: total - c[1]])
                except OSError:
                    # The server closed it (431 or a limit): counts as done.
                    c[0].close()
                    c[0] = None
        sent = sum(c[1] for c in socks)
        # Let the server read what the kernel buffered.
        during = 0
        for _ in range(20):
            time.sleep(0.5)
            now = status_kib(server.pid, "VmRSS")
            if now <= during:
                break
            during = now
        for c in socks:
            if c[0] is not None:
                c[0].close()
        time.sleep(2.0)
        after = status_kib(server.pid, "VmRSS")
        peak = status_kib(server.pid, "VmHWM")
        mib = lambda k: k / 1024
        print(f"connections {args.connections}, head {args.head_kib} KiB each, "
              f"{sent / 2**20:.0f} MiB sent")
        print(f"RSS MiB: before {mib(before):.0f}, with them open {mib(during):.0f}, "
              f"peak {mib(peak):.0f}, 2 s after closing {mib(after):.0f}")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    sys.exit(main())
