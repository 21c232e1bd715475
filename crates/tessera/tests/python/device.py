"""The device authorization grant (RFC 8628) through requests-oauth2client, with a DPoP key.

Settings: `issuer`, `client_id` (a public client), `scope`. The library asks the device
authorization endpoint for codes (§3.1) and prints:

    {"user_code": CODE, "verification_uri": URL}

The test enters the code on the verification page, signs in and approves, then writes one line
on standard input. The library then polls the token endpoint once with the device code and a
DPoP proof by a key it generates (RFC 9449 §5), refreshes with the same key, and prints:

    {"token": ..., "refreshed": ..., "jwk": PUBLIC JWK, "jkt": THE LIBRARY'S THUMBPRINT}
"""

from __future__ import annotations

import sys

import requests
from requests_oauth2client import DPoPKey

from common import client, emit, run, settings


def main() -> None:
    conf = settings()
    # The library takes the endpoints it knows from discovery, but not this one: it is passed
    # from the same document.
    discovery = f"{conf['issuer']}/.well-known/openid-configuration"
    endpoint = requests.get(discovery, timeout=10).json()["device_authorization_endpoint"]
    oauth = client(conf, device_authorization_endpoint=endpoint)
    authorization = oauth.authorize_device(scope=conf["scope"])
    emit(
        {
            "user_code": authorization.user_code,
            "verification_uri": authorization.verification_uri,
        }
    )
    sys.stdin.readline()
    key = DPoPKey.generate()
    token = oauth.device_code(authorization, dpop_key=key)
    refreshed = oauth.refresh_token(token)
    emit(
        {
            "token": {"token_type": token.token_type, "access_token": token.access_token},
            "refreshed": {
                "token_type": refreshed.token_type,
                "access_token": refreshed.access_token,
            },
            "jwk": key.public_jwk.to_dict(),
            "jkt": key.dpop_jkt,
        }
    )


if __name__ == "__main__":
    run(main)
