#!/usr/bin/env python3
"""Median cost of a failed client authentication: an unknown client id vs a known one with a
wrong secret (HTTP Basic), or, with `--method private_key_jwt`, vs a known client's assertion
with a forged signature (RFC 7523; an ES256 key of the same kind, `--alg` for another), at the
token endpoint (one kept-alive connection, one request at a time, the two kinds interleaved so
that both see the same machine load).

Every unknown id is new, as an attacker probing for registered ids would send them. Give one
or more `tessera` binaries (say, one built before a change and one after) to compare them in
one run:

    bench/client_auth_timing.py target/release/tessera [OTHER_TESSERA ...] [--requests N]
        [--method secret|private_key_jwt] [--alg ES256|RS256|EdDSA] [--kid]

With `--kid` the forged assertions keep the `kid` that `tessera jwt sign` writes (the
forger's key thumbprint, which names no registered key); without, the header has none.
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
import urllib.parse


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def basic(client_id, secret):
    raw = f"{client_id}:{secret}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def forged_assertions(binary, env, d, alg, kid):
    """A function making an assertion for a client id, signed by a key no client has."""
    keys = os.path.join(d, "forger")
    subprocess.run(
        [binary, "jwt", "keygen", "--out", keys, "--alg", alg],
        env=env, check=True, capture_output=True,
    )
    out = subprocess.run(
        [binary, "jwt", "sign", "--key", os.path.join(keys, "private.pem"),
         "--iss", "x", "--sub", "x", "--ttl", "3600"],
        env=env, check=True, capture_output=True,
    )
    header, payload, signature = out.stdout.decode().strip().split(".")
    head = json.loads(unb64(header))
    if not kid:
        head.pop("kid", None)
    header = b64(json.dumps(head, separators=(",", ":")).encode())
    claims = json.loads(unb64(payload))
    aud = env["TESSERA_ISSUER"] + "/oauth2/token"

    def make(client_id):
        c = dict(claims, iss=client_id, sub=client_id, aud=aud, jti=secrets.token_urlsafe(16))
        # The signature does not verify whatever the claims: it is not the client's key.
        return f"{header}.{b64(json.dumps(c).encode())}.{signature}"

    return make


def measure(binary, requests, method="secret", alg="ES256", kid=False):
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
        create = [binary, "client", "create", "--name", "bench", "--json"]
        if method == "private_key_jwt":
            keys = os.path.join(d, "client")
            subprocess.run(
                [binary, "jwt", "keygen", "--out", keys, "--alg", alg],
                env=env, check=True, capture_output=True,
            )
            create += ["--token-endpoint-auth-method", "private_key_jwt",
                       "--public-key", os.path.join(keys, "public.pem")]
            forge = forged_assertions(binary, env, d, alg, kid)
        out = subprocess.run(create, env=env, check=True, capture_output=True)
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
            headers = {"Content-Type": "application/x-www-form-urlencoded"}

            def once(client):
                if method == "private_key_jwt":
                    body = urllib.parse.urlencode({
                        "grant_type": "client_credentials",
                        "client_assertion_type":
                            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                        "client_assertion": forge(client),
                    })
                else:
                    body = "grant_type=client_credentials"
                    headers["Authorization"] = basic(client, "tcs_" + secrets.token_urlsafe(32))
                t0 = time.perf_counter()
                conn.request("POST", "/oauth2/token", body=body, headers=headers)
                res = conn.getresponse()
                res.read()
                elapsed = time.perf_counter() - t0
                assert res.status == 401, res.status
                return elapsed

            # Warm-up: the known client gets cached, as it would be on a live server.
            for _ in range(200):
                once(client_id)
                once(secrets.token_hex(16))
            unknown, known = [], []
            for _ in range(requests):
                unknown.append(once(secrets.token_hex(16)))
                known.append(once(client_id))
            return statistics.median(unknown), statistics.median(known)
        finally:
            server.terminate()
            server.wait()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("binaries", nargs="+")
    p.add_argument("--requests", type=int, default=3000)
    p.add_argument("--method", choices=["secret", "private_key_jwt"], default="secret")
    p.add_argument("--alg", choices=["ES256", "RS256", "EdDSA"], default="ES256")
    p.add_argument("--kid", action="store_true")
    args = p.parse_args()
    known = "wrong secret" if args.method == "secret" else "forged sig."
    print(f"{'binary':40} {'unknown id':>12} {known:>13} {'ratio':>6}")
    for b in args.binaries:
        u, k = measure(b, args.requests, args.method, args.alg, args.kid)
        print(f"{b:40} {u * 1e6:>9.0f} µs {k * 1e6:>10.0f} µs {u / k:>6.2f}")


if __name__ == "__main__":
    main()
