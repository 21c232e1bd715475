"""The client credentials grant (RFC 6749 §4.4) through requests-oauth2client, Bearer or DPoP.

Settings: `issuer`, `client_id`, `client_secret`, optional `scope`, and `dpop` (bool): with
it the library generates a key for `alg` (default ES256) and proves possession of it at the
token endpoint (RFC 9449 §5), obeying a `use_dpop_nonce` error with the `DPoP-Nonce` it names
(§8).

Prints one line: the token response as the library parsed it (`class` is the token class it
chose from `token_type`), and for DPoP the key's public JWK, the library's own RFC 7638
thumbprint of it, and the authorization server nonce it was last given (`null` if none).
"""

from __future__ import annotations

from requests_oauth2client import DPoPKey, DPoPToken

from common import client, emit, run, settings


def main() -> None:
    conf = settings()
    oauth = client(conf)
    key = DPoPKey.generate(alg=conf.get("alg", "ES256")) if conf.get("dpop") else None
    token = oauth.client_credentials(scope=conf.get("scope"), dpop=key is not None, dpop_key=key)
    out = {
        "class": type(token).__name__,
        "token_type": token.token_type,
        "access_token": token.access_token,
        "scope": token.scope,
        "expires_in": token.expires_in,
    }
    if isinstance(token, DPoPToken):
        out["jwk"] = token.dpop_key.public_jwk.to_dict()
        out["jkt"] = token.dpop_key.dpop_jkt
        out["as_nonce"] = token.dpop_key.as_nonce
    emit(out)


if __name__ == "__main__":
    run(main)
