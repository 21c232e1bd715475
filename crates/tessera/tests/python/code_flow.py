"""The authorization code flow with PKCE (RFC 6749 §4.1, RFC 7636) through requests-oauth2client.

Settings: `issuer`, `client_id`, `client_secret` (empty for a public client), `redirect_uri`,
`scope`, `dpop` (bool) and `par` (bool). The library builds the authorization request (state,
nonce, S256 PKCE, and with `dpop` a fresh ES256 key whose thumbprint goes in `dpop_jkt`,
RFC 9449 §10), pushes it first with `par` (RFC 9126, with a DPoP proof), and prints it:

    {"authorize_url": URL, "dpop_jkt": THUMBPRINT or null, "jwk": PUBLIC JWK or null}

The test signs in at that URL and writes the redirect it got back (the full callback URL) as
one line on standard input. The library then checks the callback (`state`, `iss`), exchanges
the code (its PKCE verifier, and its DPoP key), checks the ID token (`id_token_sub` is its
subject once checked), calls the UserInfo endpoint with the token as its `requests` auth
handler (for DPoP: `Authorization: DPoP` and a proof with `ath`), refreshes with the same key,
then tries to refresh the new refresh token with another key. It prints one line:

    {"token": ..., "userinfo": ..., "refreshed": ..., "other_key": ..., "as_nonce": ...,
     "rs_nonce": ...}

where each of the first four is what the library returned or the OAuth error it raised, and
the nonces are the last ones the token and PAR endpoints and the UserInfo endpoint gave the
library with `use_dpop_nonce` (RFC 9449 §8, §9), which it then retried with.

Two settings stop earlier, for an attacker's view: with `thief` the code is exchanged (with
the PKCE verifier) under another key and the line is `{"thief": ...}`; with `proofs` the line
stops after `userinfo` and adds `proofs`: DPoP proofs the library made for the UserInfo
endpoint, for the test to replay or misuse.
"""

from __future__ import annotations

import sys
from typing import Any

from binapy import BinaPy
from requests_oauth2client import BearerToken, DPoPKey, DPoPToken

from common import client, emit, error_of, run, settings


def describe(token: BearerToken) -> dict[str, Any]:
    out: dict[str, Any] = {
        "class": type(token).__name__,
        "token_type": token.token_type,
        "access_token": token.access_token,
        "refresh_token": token.refresh_token,
        "scope": token.scope,
        "id_token_sub": token.id_token.subject if token.id_token else None,
    }
    if isinstance(token, DPoPToken):
        out["jkt"] = token.dpop_key.dpop_jkt
    return out


def attempt(what: Any) -> dict[str, Any]:
    """`what()`, or the error it raised."""
    try:
        return {"ok": what()}
    except Exception as exc:  # noqa: BLE001
        return {"failed": error_of(exc)}


def proofs(oauth: Any, token: BearerToken, key: DPoPKey) -> dict[str, str]:
    """Proofs the library makes for a GET of the UserInfo endpoint with `token`, for the test to
    send as a network attacker would: a good one (to be replayed), one by another key, one for
    another URL, one for another method, one without the token's hash (RFC 9449 §4.3, §7)."""
    url = oauth.userinfo_endpoint
    ath = BinaPy(token.access_token).to("sha256").to("b64u").decode()
    return {
        "good": str(key.proof(htm="GET", htu=url, ath=ath)),
        "other_key": str(DPoPKey.generate().proof(htm="GET", htu=url, ath=ath)),
        "other_url": str(key.proof(htm="GET", htu=oauth.token_endpoint, ath=ath)),
        "other_method": str(key.proof(htm="DELETE", htu=url, ath=ath)),
        "no_ath": str(key.proof(htm="GET", htu=url)),
    }


def main() -> None:
    conf = settings()
    oauth = client(conf, redirect_uri=conf["redirect_uri"])
    request = oauth.authorization_request(scope=conf["scope"], dpop=bool(conf.get("dpop")))
    front = oauth.pushed_authorization_request(request) if conf.get("par") else request
    key = request.dpop_key
    emit(
        {
            "authorize_url": front.uri,
            "dpop_jkt": request.dpop_jkt,
            "jwk": key.public_jwk.to_dict() if key else None,
        }
    )

    callback = sys.stdin.readline().strip()
    response = request.validate_callback(callback)
    if conf.get("thief"):
        # Someone who saw the code and the PKCE verifier, but holds another key.
        thief = DPoPKey.generate()
        stolen = {
            "grant_type": "authorization_code",
            "code": response.code,
            "redirect_uri": response.redirect_uri,
            "code_verifier": response.code_verifier,
        }
        emit({"thief": attempt(lambda: describe(oauth.token_request(stolen, dpop_key=thief)))})
        return
    token = oauth.authorization_code(response, validate=False)
    # The library checks the ID token (signature, iss, aud, nonce, at_hash...) by rebuilding
    # the token around the checked ID token; version 1.8.0 rebuilds a DPoPToken without its key
    # and fails, so the check runs on a bearer copy of the same response.
    BearerToken(
        access_token=token.access_token,
        expires_at=token.expires_at,
        scope=token.scope,
        refresh_token=token.refresh_token,
        id_token=token.id_token,
    ).validate_id_token(oauth, response)
    out: dict[str, Any] = {"token": describe(token)}
    out["userinfo"] = attempt(lambda: oauth.userinfo(token))
    if key is not None and conf.get("proofs"):
        out["proofs"] = proofs(oauth, token, key)
        emit(out)
        return
    if key is not None:
        # The nonces the servers handed the library (RFC 9449 §8 and §9), if they asked for any.
        out["as_nonce"] = key.as_nonce
        out["rs_nonce"] = key.rs_nonce
    newer: BearerToken | None = None
    try:
        newer = oauth.refresh_token(token)
        out["refreshed"] = {"ok": describe(newer)}
    except Exception as exc:  # noqa: BLE001
        out["refreshed"] = {"failed": error_of(exc)}
    if newer is not None and newer.refresh_token:
        other = DPoPKey.generate()
        grant = {"grant_type": "refresh_token", "refresh_token": newer.refresh_token}
        out["other_key"] = attempt(lambda: describe(oauth.token_request(grant, dpop_key=other)))
        out["other_key_jkt"] = other.dpop_jkt
    emit(out)


if __name__ == "__main__":
    run(main)
