#!/usr/bin/env python3
"""A burst of wrong-password sign-ins: the server's memory, and the token endpoint meanwhile.

Starts `tessera serve` on a temporary SQLite database with one user and one client, takes one
CSRF token from the sign-in page, then sends BURST wrong-password sign-ins at once from 8
loopback addresses, while another thread keeps asking the token endpoint for client-credentials
tokens. Prints the server's peak and settled RSS, how the sign-ins were answered, and the token
endpoint's p50/p99 before and during the burst (and their ratio).

    bench/signin-burst.py [--tessera target/release/tessera] [--burst 400] [--no-limits]
                          [--set TESSERA_PASSWORD_CHECKS_CONCURRENT=1 ...]

--no-limits turns the per-address and per-user budgets off, so every sign-in reaches the
password-check budget (the concurrency cap and its queue) rather than being refused first.
"""

import argparse
import base64
import http.client
import json
import multiprocessing
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

SECRET = "bench-sealing-secret-not-for-production"
PASSWORD = "correct horse battery staple"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] if xs else float("nan")


def token_loop(port, basic, stop, out):
    """Client-credentials token requests, one at a time, until `stop`; sends (t, secs, status)."""
    conn = http.client.HTTPConnection("127.0.0.1", port)
    latencies = []
    while not stop.is_set():
        t0 = time.perf_counter()
        conn.request("POST", "/oauth2/token", "grant_type=client_credentials", {
            "Authorization": f"Basic {basic}",
            "Content-Type": "application/x-www-form-urlencoded"})
        resp = conn.getresponse()
        resp.read()
        latencies.append((time.perf_counter(), time.perf_counter() - t0, resp.status))
        time.sleep(0.002)
    out.send(latencies)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tessera", default="target/release/tessera")
    ap.add_argument("--burst", type=int, default=400)
    ap.add_argument("--no-limits", action="store_true")
    ap.add_argument("--set", action="append", default=[], metavar="TESSERA_X=V",
                    help="a server setting for this run (repeatable)")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="tessera-signin-burst-")
    port = free_port()
    base = f"127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    env.update(
        TESSERA_LISTEN=base,
        TESSERA_ISSUER=f"http://{base}",
        TESSERA_DATABASE_URL=f"sqlite://{tmp}/tessera.db",
        TESSERA_SECRET=SECRET,
        RUST_LOG="warn",
    )
    if args.no_limits:
        env.update(TESSERA_LOGIN_FAILURES_PER_ADDRESS="0", TESSERA_LOGIN_FAILURES_PER_USER="0")
    for kv in args.set:
        k, _, v = kv.partition("=")
        env[k] = v

    def cli(*a, stdin=None):
        out = subprocess.run([args.tessera, *a], env=env, input=stdin, capture_output=True, text=True, check=True)
        return json.loads(out.stdout)

    server = subprocess.Popen([args.tessera, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                c.request("GET", "/health/ready")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.05)
        cli("user", "create", "--username", "alice", "--password-stdin", "--json", stdin=PASSWORD + "\n")
        app = cli("client", "create", "--name", "app", "--grant-type", "authorization_code",
                  "--redirect-uri", "https://app.example.com/cb", "--scope", "openid", "--json")
        m2m = cli("client", "create", "--name", "m2m", "--json")
        time.sleep(0.5)

        # One GET for the sign-in page: its hidden fields and the CSRF cookie.
        q = urllib.parse.urlencode({
            "response_type": "code", "client_id": app["client_id"],
            "redirect_uri": "https://app.example.com/cb", "scope": "openid", "state": "s",
            "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "code_challenge_method": "S256",
        })
        c = http.client.HTTPConnection("127.0.0.1", port)
        c.request("GET", f"/oauth2/authorize?{q}")
        r = c.getresponse()
        page = r.read().decode()
        cookie = "; ".join(v.split(";")[0] for k, v in r.getheaders() if k.lower() == "set-cookie")
        fields = re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)"', page)
        fields = [(k, v.replace("&#x2f;", "/").replace("&amp;", "&")) for k, v in fields]

        basic = base64.b64encode(f"{m2m['client_id']}:{m2m['client_secret']}".encode()).decode()
        stop = threading.Event()
        # The token requests come from a process of their own, so the burst's threads do not
        # slow down the measuring side (perf_counter is the system's monotonic clock).
        token_stop = multiprocessing.Event()
        receiver, sender = multiprocessing.Pipe(duplex=False)
        token_proc = multiprocessing.Process(target=token_loop, args=(port, basic, token_stop, sender))
        token_proc.start()

        peak = [rss_kib(server.pid)]

        def rss_loop():
            while not stop.is_set():
                peak[0] = max(peak[0], rss_kib(server.pid))
                time.sleep(0.01)

        idle_rss = rss_kib(server.pid)
        threads = [threading.Thread(target=rss_loop)]
        for t in threads:
            t.start()
        time.sleep(2.0)
        burst_start = time.perf_counter()
        statuses = []
        lock = threading.Lock()
        go = threading.Barrier(args.burst)

        def sign_in(i):
            ip = f"127.0.0.{10 + i % 8}"
            body = urllib.parse.urlencode(fields + [("username", "alice"), ("password", f"wrong {i}")])
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120, source_address=(ip, 0))
            conn.connect()
            go.wait()
            conn.request("POST", "/oauth2/authorize", body, {
                "Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie})
            resp = conn.getresponse()
            resp.read()
            with lock:
                statuses.append(resp.status)

        burst = [threading.Thread(target=sign_in, args=(i,)) for i in range(args.burst)]
        for t in burst:
            t.start()
        for t in burst:
            t.join()
        burst_end = time.perf_counter()
        time.sleep(2.0)
        stop.set()
        token_stop.set()
        latencies = receiver.recv()
        token_proc.join()
        for t in threads:
            t.join()
        settled_rss = rss_kib(server.pid)

        before = [d for (t, d, s) in latencies if t < burst_start]
        during = [d for (t, d, s) in latencies if burst_start <= t <= burst_end]
        failed = sum(1 for (_, _, s) in latencies if s != 200)
        counts = {s: statuses.count(s) for s in sorted(set(statuses))}
        ms = lambda x: f"{x * 1000:.1f} ms"
        print(f"burst: {args.burst} wrong sign-ins from 8 addresses in {burst_end - burst_start:.2f} s; "
              f"answers {counts}")
        print(f"RSS: idle {idle_rss / 1024:.1f} MiB, peak {peak[0] / 1024:.1f} MiB, "
              f"2 s after the burst {settled_rss / 1024:.1f} MiB")
        p50b, p99b = percentile(before, 0.5), percentile(before, 0.99)
        p50d, p99d = percentile(during, 0.5), percentile(during, 0.99)
        print(f"token endpoint before: {len(before)} requests, p50 {ms(p50b)}, p99 {ms(p99b)}")
        print(f"token endpoint during: {len(during)} requests, p50 {ms(p50d)}, p99 {ms(p99d)} "
              f"(p99 ratio {p99d / p99b:.2f}); non-200 answers: {failed}")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    sys.exit(main())
