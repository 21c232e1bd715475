#!/usr/bin/env python3
"""Median cost of a failed client authentication: an unknown client id vs a known one with a
wrong secret, at the token endpoint (HTTP Basic, one kept-alive connection, one request at a
time, the two kinds interleaved so that both see the same machine load).

Every unknown id is new, as an attacker probing for registered ids would send them. Give one
or more `tessera` binaries (say, one built before a change and one after) to compare them in
one run:

    bench/client_auth_timing.py target/release/tessera [OTHER_TESSERA ...] [--requests N]
"""

import argparse
import base64
import http.client
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def basic(client_id, secret):
    raw = f"{client_id}:{secret}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def measure(binary, requests):
    with tempfile.TemporaryDirectory() as d:
        port = free_port()
        env = dict(os.environ)
        env.update(
            {
                "TESSERA_LISTEN": f"127.0.0.1:{port}",
                "TESSERA_ISSUER": f"http://127.0.0.1:{port}",
                "TESSERA_DATABASE_URL": f"sqlite://{d}/tessera.db",
                "TESSERA_SECRET": "bench-sealing-secret-not-for-production",
                "TESSERA_AUTH_FAILURES_PER_MINUTE": "0",
                "RUST_LOG": "warn",
            }
        )
        out = subprocess.run(
            [binary, "client", "create", "--name", "bench", "--json"],
            env=env,
            check=True,
            capture_output=True,
        )
        client_id = json.loads(out.stdout)["client_id"]
        server = subprocess.Popen(
            [binary, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            conn = None
            for _ in range(200):
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                    conn.request("GET", "/health/alive")
                    conn.getresponse().read()
                    break
                except OSError:
                    conn = None
                    time.sleep(0.05)
            if conn is None:
                sys.exit(f"{binary}: the server did not start")
            body = "grant_type=client_credentials"
            headers = {"Content-Type": "application/x-www-form-urlencoded"}

            def once(auth):
                headers["Authorization"] = auth
                t0 = time.perf_counter()
                conn.request("POST", "/oauth2/token", body=body, headers=headers)
                res = conn.getresponse()
                res.read()
                elapsed = time.perf_counter() - t0
                assert res.status == 401, res.status
                return elapsed

            wrong = basic(client_id, "tcs_" + secrets.token_urlsafe(32))
            # Warm-up: the known client gets cached, as it would be on a live server.
            for _ in range(200):
                once(wrong)
                once(basic(secrets.token_hex(16), "tcs_" + secrets.token_urlsafe(32)))
            unknown, known = [], []
            for _ in range(requests):
                unknown.append(
                    once(basic(secrets.token_hex(16), "tcs_" + secrets.token_urlsafe(32)))
                )
                known.append(once(wrong))
            return statistics.median(unknown), statistics.median(known)
        finally:
            server.terminate()
            server.wait()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("binaries", nargs="+")
    p.add_argument("--requests", type=int, default=3000)
    args = p.parse_args()
    print(f"{'binary':40} {'unknown id':>12} {'wrong secret':>13} {'ratio':>6}")
    for b in args.binaries:
        u, k = measure(b, args.requests)
        print(f"{b:40} {u * 1e6:>9.0f} µs {k * 1e6:>10.0f} µs {u / k:>6.2f}")


if __name__ == "__main__":
    main()
