#!/usr/bin/env python3
"""What forged client assertions cost other clients.

Starts `tessera serve` (SQLite, in a temporary directory), registers a probe client with a
secret and an attacker's `private_key_jwt` client with KEYS RSA-4096 keys (one key, repeated
under distinct kids: a signature check costs the same whichever copy it is tried with), then
measures the probe's token requests (client_credentials, one at a time) alone and while
CONCURRENCY connections send forged client assertions (RS256, a random signature) as fast as
the server answers them. Prints the probe's p50/p99 latency and the attack's rate.

Usage:
    bench/forged_assertions.py --tessera target/release/tessera [--keys 10] [--kid]
        [--concurrency 64] [--duration 10]

`--kid` names one of the registered keys in the forged assertions' header (with several keys
an assertion must name one; without it, every forged assertion is refused before any
signature check). A server that accepts more than 10 keys can be measured with `--keys 300`.
Figures are reported, not asserted; needs Python 3 with `cryptography`.
"""

import argparse
import base64
import http.client
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from cryptography.hazmat.primitives.asymmetric import rsa


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values, q):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Tessera:
    def __init__(self, binary: str, workdir: str):
        self.binary = binary
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.env = dict(os.environ)
        self.env.update(
            {
                "TESSERA_LISTEN": f"127.0.0.1:{self.port}",
                "TESSERA_ISSUER": self.issuer,
                "TESSERA_DATABASE_URL": f"sqlite://{workdir}/tessera.db",
                "TESSERA_SECRET": "forged-assertions-bench-secret-0123456789abcdef",
                # The per-address throttle would stop one attacking address early; an attacker
                # with many addresses is not stopped by it, and the point is the CPU cost.
                "TESSERA_AUTH_FAILURES_PER_MINUTE": "0",
                "TESSERA_LOG_FORMAT": "json",
                "RUST_LOG": "error",
            }
        )
        self.workdir = workdir
        self.log = open(os.path.join(workdir, "server.log"), "w")
        self.proc = subprocess.Popen(
            [binary, "serve"], env=self.env, cwd=workdir, stdout=self.log, stderr=self.log
        )
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                status, _ = self.request("GET", "/.well-known/oauth-authorization-server")
                if status == 200:
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("tessera did not start; see " + self.log.name)

    def cli(self, *args) -> dict:
        out = subprocess.run(
            [self.binary, *args, "--json"],
            env=self.env,
            cwd=self.workdir,
            check=True,
            capture_output=True,
            text=True,
        )
        return json.loads(out.stdout)

    def request(self, method, path, body=None, headers=None, conn=None):
        own = conn is None
        conn = conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        conn.request(method, path, body=body, headers=headers or {})
        res = conn.getresponse()
        data = res.read()
        if own:
            conn.close()
        return res.status, data

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.log.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tessera", required=True)
    p.add_argument("--keys", type=int, default=10)
    p.add_argument("--kid", action="store_true")
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--duration", type=float, default=10.0)
    args = p.parse_args()

    workdir = tempfile.mkdtemp(prefix="tessera-forged-")
    server = Tessera(os.path.abspath(args.tessera), workdir)
    try:
        run(server, args, workdir)
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def run(server, args, workdir):
    probe = server.cli("client", "create", "--name", "probe")
    basic = base64.b64encode(
        f"{probe['client_id']}:{probe['client_secret']}".encode()
    ).decode()
    probe_headers = {
        "Authorization": f"Basic {basic}",
        "Content-Type": "application/x-www-form-urlencoded",
    }

    key = rsa.generate_private_key(public_exponent=65537, key_size=4096).public_key()
    numbers = key.public_numbers()
    n = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
    jwks = {
        "keys": [
            {"kty": "RSA", "kid": f"k{i}", "alg": "RS256", "e": "AQAB", "n": b64(n)}
            for i in range(args.keys)
        ]
    }
    path = os.path.join(workdir, "attacker.jwks")
    with open(path, "w") as f:
        json.dump(jwks, f)
    attacker = server.cli(
        "client",
        "create",
        "--name",
        "attacker",
        "--token-endpoint-auth-method",
        "private_key_jwt",
        "--jwks-file",
        path,
    )
    attacker_id = attacker["client_id"]
    time.sleep(1.5)  # the running server learns of both clients through the change feed

    header = {"alg": "RS256"}
    if args.kid:
        header["kid"] = "k0"
    token_endpoint = f"{server.issuer}/oauth2/token"

    def forged() -> bytes:
        now = int(time.time())
        claims = {
            "iss": attacker_id,
            "sub": attacker_id,
            "aud": token_endpoint,
            "iat": now,
            "exp": now + 60,
            "jti": secrets.token_urlsafe(16),
        }
        jws = ".".join(
            [
                b64(json.dumps(header).encode()),
                b64(json.dumps(claims).encode()),
                b64(secrets.token_bytes(512)),
            ]
        )
        return (
            "grant_type=client_credentials&client_assertion_type="
            "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"
            f"&client_assertion={jws}"
        ).encode()

    status, body = server.request(
        "POST",
        "/oauth2/token",
        forged(),
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    print(f"a forged assertion: {status} {body.decode()[:160]}")

    def probe_for(seconds):
        latencies = []
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        end = time.time() + seconds
        while time.time() < end:
            started = time.perf_counter()
            status, _ = server.request(
                "POST", "/oauth2/token", b"grant_type=client_credentials", probe_headers, conn
            )
            latencies.append((time.perf_counter() - started) * 1000)
            if status != 200:
                raise RuntimeError(f"probe got {status}")
        conn.close()
        return latencies

    probe_for(1.0)  # warm-up
    alone = probe_for(args.duration)

    stop = threading.Event()
    sent = [0] * args.concurrency

    def attack(i):
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        while not stop.is_set():
            server.request(
                "POST",
                "/oauth2/token",
                forged(),
                {"Content-Type": "application/x-www-form-urlencoded"},
                conn,
            )
            sent[i] += 1
        conn.close()

    threads = [threading.Thread(target=attack, args=(i,)) for i in range(args.concurrency)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    before = sum(sent)
    under_attack = probe_for(args.duration)
    attack_rate = (sum(sent) - before) / args.duration
    stop.set()
    for t in threads:
        t.join()

    print(
        f"keys={args.keys} kid={'yes' if args.kid else 'no'} "
        f"concurrency={args.concurrency} duration={args.duration}s"
    )
    for label, values in [("alone", alone), ("under attack", under_attack)]:
        print(
            f"probe {label:>12}: n={len(values):5d} p50={statistics.median(values):8.2f} ms "
            f"p99={percentile(values, 0.99):8.2f} ms"
        )
    print(f"forged assertions answered: {attack_rate:.0f}/s")


if __name__ == "__main__":
    sys.exit(main())
