"""What the client scripts share: their settings, the client built from discovery, output.

Every script takes one argument, a JSON object of settings (the issuer, the client's
credentials, what to do), builds a `requests_oauth2client.OAuth2Client` from the server's
discovery document, and prints one JSON object per line on standard output for the Rust test
to read. A failure prints `{"exception": NAME, "message": TEXT}` (with `error` and
`error_description` when an endpoint answered with an OAuth error) and exits 1.
"""

from __future__ import annotations

import json
import sys
import traceback
from typing import Any

from requests_oauth2client import OAuth2Client


def settings() -> dict[str, Any]:
    """The JSON object given as the only argument."""
    if len(sys.argv) != 2:
        fail("usage", f"{sys.argv[0]} SETTINGS_JSON")
    return json.loads(sys.argv[1])


def client(conf: dict[str, Any], **kwargs: Any) -> OAuth2Client:
    """A client of `conf["issuer"]` built from its discovery document.

    The test server speaks plain HTTP on loopback, so the library's https-only checks of the
    issuer and the endpoints are turned off (`testing=True`); everything else (issuer match,
    `iss` in the authorization response, ID token checks against the server's JWKS) stays on.
    Tessera signs ID tokens with ES256 (the library expects RS256 unless told).
    """
    secret = conf.get("client_secret") or None
    kwargs.setdefault("id_token_signed_response_alg", conf.get("id_token_alg", "ES256"))
    return OAuth2Client.from_discovery_endpoint(
        issuer=conf["issuer"],
        client_id=conf["client_id"],
        client_secret=secret,
        testing=True,
        **kwargs,
    )


def emit(value: dict[str, Any]) -> None:
    """Prints one JSON line and flushes it (the test may be waiting on it)."""
    print(json.dumps(value), flush=True)


def fail(name: str, message: str) -> None:
    """Prints a failure line and exits 1."""
    emit({"exception": name, "message": message})
    sys.exit(1)


def run(main: Any) -> None:
    """Runs `main`, turning any exception into a failure line."""
    try:
        main()
    except SystemExit:
        raise
    except BaseException as exc:  # noqa: BLE001
        traceback.print_exc(file=sys.stderr)
        emit({**error_of(exc), "message": str(exc)})
        sys.exit(1)


def error_of(exc: BaseException) -> dict[str, Any]:
    """The OAuth error an endpoint error exception carries (RFC 6749 §5.2)."""
    return {
        "exception": type(exc).__name__,
        "error": getattr(exc, "error", None),
        "error_description": getattr(exc, "description", None),
    }
