//! Per-client security profiles: the FAPI 2.0 Security Profile.
//!
//! Owns every rule a client registered with `profile = fapi2` ([`ClientProfile::Fapi2`]) is
//! held to beyond the server's own, each a function named by what it decides and citing its
//! section of the FAPI 2.0 Security Profile (OpenID Foundation, Final, February 2025,
//! <https://openid.net/specs/fapi-security-profile-2_0.html>): §5.3.2.1 (general
//! requirements for authorization servers), §5.3.2.2 (authorization endpoint flows) and
//! §5.4.1 (cryptography). The places that enforce a rule call it in one line: the
//! registration ([`crate::admin::clients`]), the authorization endpoint and the pushed
//! authorization request endpoint ([`crate::endpoint::authorize`], [`crate::endpoint::par`]),
//! every endpoint that authenticates a client, the token endpoint
//! ([`crate::endpoint::token`]) and the refresh token grant
//! ([`crate::grant::refresh_token`]). For a client without a profile every function here
//! lets everything through and changes no value.
//!
//! What the profile asks of the authorization server that is true for every client already
//! (TLS, discovery, no password grant, `response_type=code` only, single-use codes, `iss` in
//! every authorization response, 303 redirects, loopback-only `http` redirect URIs, ES256 or
//! EdDSA signatures) is listed in the README's "FAPI 2.0 profile" table, not repeated here.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;

use crate::client_auth::AuthMethod;
use crate::confirmation::Confirmation;
use crate::error::OAuthError;
use crate::model::{ClientProfile, ClientRecord};
use crate::params::Params;

/// The JWS algorithms a FAPI 2.0 client may sign its client assertions with (§5.4.1 item 1.2:
/// "`PS256`, `ES256`, or `EdDSA` (using the `Ed25519` variant)"; Tessera's EdDSA keys are
/// Ed25519 only, [`crate::client_keys`]).
pub const FAPI2_ALGORITHMS: &[&str] = &["PS256", "ES256", "EdDSA"];

/// The longest an authorization code of a FAPI 2.0 client lives, seconds (§5.3.2.1 item 11:
/// "a maximum lifetime of 60 seconds").
pub const FAPI2_CODE_TTL: i64 = 60;

/// The longest a pushed request's `request_uri` of a FAPI 2.0 client lives, seconds
/// (§5.3.2.2 item 12: "`expires_in` values of less than 600 seconds").
pub const FAPI2_PAR_TTL: i64 = 599;

fn fapi2(client: &ClientRecord) -> bool {
    client.user_flow.profile == ClientProfile::Fapi2
}

/// Whether a registered client authenticates with a key it holds, as the profile requires:
/// registered public keys (`private_key_jwt`), or a certificate (mutual TLS client
/// authentication, RFC 8705 §2).
fn authenticates_with_a_key(client: &ClientRecord) -> bool {
    client.jwks.is_some() || client.user_flow.certificate_auth.is_some()
}

/// Whether the client's registration can meet its profile; the reason if not, for the
/// administrator. FAPI 2.0 §5.3.2.1 item 3: "shall only support confidential clients"; item
/// 6: clients authenticate with MTLS (RFC 8705 §2) or `private_key_jwt` (OpenID Connect Core
/// §9), never with a shared secret.
pub fn check_registration(client: &ClientRecord) -> Result<(), &'static str> {
    if !fapi2(client) {
        return Ok(());
    }
    if client.public {
        return Err("a fapi2 client is confidential (FAPI 2.0 §5.3.2.1 item 3): not public");
    }
    if !authenticates_with_a_key(client) {
        return Err(
            "a fapi2 client authenticates with private_key_jwt or mutual TLS (FAPI 2.0 \
             §5.3.2.1 item 6): register its public keys, not a secret",
        );
    }
    Ok(())
}

/// Whether the client's authorization requests must be pushed first: its own
/// `require_pushed_authorization_requests` (RFC 9126 §6), or its profile (FAPI 2.0 §5.3.2.2
/// item 3: "shall reject authorization requests sent without \[RFC9126\]").
pub fn requires_par(client: &ClientRecord) -> bool {
    client.user_flow.require_par || fapi2(client)
}

/// The profile's rules on the parameters of an authorization request, pushed or resolved
/// from a push (the redirect URI is trusted by then: a refusal goes back to the client).
///
/// - FAPI 2.0 §5.3.2.2 item 5: "shall require PKCE \[RFC7636\] with `S256` as the code
///   challenge method": a `code_challenge` and `code_challenge_method=S256`, named (RFC 7636
///   §4.3 reads a missing method as `plain`).
/// - §5.3.2.2 item 6: "shall require the `redirect_uri` parameter in pushed authorization
///   requests" (a client with one registered URI may otherwise leave it out, RFC 6749
///   §3.1.2.3).
pub fn check_authorization_request(
    client: &ClientRecord,
    params: &Params,
) -> Result<(), OAuthError> {
    if !fapi2(client) {
        return Ok(());
    }
    if params.get("redirect_uri")?.is_none() {
        return Err(OAuthError::invalid_request(
            "redirect_uri is required in a pushed authorization request (FAPI 2.0 §5.3.2.2)",
        ));
    }
    let challenge = params.get("code_challenge")?;
    let method = params.get("code_challenge_method")?;
    if challenge.is_none() || method != Some("S256") {
        return Err(OAuthError::invalid_request(
            "PKCE with code_challenge_method=S256 is required (FAPI 2.0 §5.3.2.2)",
        ));
    }
    Ok(())
}

/// The method a client of the profile authenticated with, refused unless the profile allows
/// it (FAPI 2.0 §5.3.2.1 item 6). `invalid_client`: RFC 6749 §5.2 names "unsupported
/// authentication method" as a client authentication failure.
fn check_auth_method(method: AuthMethod) -> Result<(), OAuthError> {
    match method {
        // Mutual TLS client authentication (RFC 8705 §2) is the profile's other method.
        AuthMethod::PrivateKeyJwt
        | AuthMethod::TlsClientAuth
        | AuthMethod::SelfSignedTlsClientAuth => Ok(()),
        AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost | AuthMethod::None => {
            Err(OAuthError::invalid_client(
                "this client must authenticate with private_key_jwt or mutual TLS \
                 (FAPI 2.0 §5.3.2.1)",
            )
            .because("fapi2 client used a method the profile does not allow"))
        }
    }
}

/// The profile's rules on how the client authenticated, at every endpoint that
/// authenticates clients, after [`crate::client_auth::authenticate`] succeeded:
///
/// - FAPI 2.0 §5.3.2.1 item 6: only `private_key_jwt` or mutual TLS.
/// - §5.4.1 item 1.2: a client assertion signed with `PS256`, `ES256` or `EdDSA`
///   ([`FAPI2_ALGORITHMS`]; the server's allow-list also has RS256 and ES384).
/// - §5.3.2.1 item 8: "shall only accept its issuer identifier value … as a string in the
///   `aud` claim received in client authentication assertions" (Tessera otherwise accepts
///   the token endpoint's URL too, or an array).
///
/// Every refusal is `invalid_client` (RFC 7523 §3.2).
pub fn check_client_auth(
    client: &ClientRecord,
    method: AuthMethod,
    params: &Params,
    issuer: &str,
) -> Result<(), OAuthError> {
    if !fapi2(client) {
        return Ok(());
    }
    check_auth_method(method)?;
    if method != AuthMethod::PrivateKeyJwt {
        return Ok(());
    }
    let assertion = params.get("client_assertion")?.unwrap_or_default();
    let mut parts = assertion.split('.');
    let header = decode(parts.next());
    let claims = decode(parts.next());
    let alg = header.as_ref().and_then(|h| h.get("alg")?.as_str());
    if !alg.is_some_and(|a| FAPI2_ALGORITHMS.contains(&a)) {
        return Err(OAuthError::invalid_client(
            "this client's assertions must be signed with PS256, ES256 or EdDSA \
             (FAPI 2.0 §5.4.1)",
        ));
    }
    let aud = claims.as_ref().and_then(|c| c.get("aud")?.as_str());
    if aud != Some(issuer) {
        return Err(OAuthError::invalid_client(
            "this client's assertions must name the issuer, as a string, in aud \
             (FAPI 2.0 §5.3.2.1)",
        ));
    }
    Ok(())
}

fn decode(part: Option<&str>) -> Option<Value> {
    let bytes = URL_SAFE_NO_PAD.decode(part?).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The profile's rules on a token request, after the client authenticated and the request's
/// binding was decided (`confirmation`, [`crate::cx::Cx::confirmation`]):
///
/// - the method, as [`check_client_auth`] (FAPI 2.0 §5.3.2.1 item 6);
/// - FAPI 2.0 §5.3.2.1 item 4: "shall only issue sender-constrained access tokens", by DPoP
///   (RFC 9449) or a client certificate (RFC 8705 §3), item 5. A request without a binding
///   is refused before the grant runs (a code is not spent by it) with `invalid_request`:
///   the request lacks something required (RFC 6749 §5.2), a `DPoP` proof or a client
///   certificate, as RFC 9449 §5.2 has the server reject a DPoP-bound client's request
///   "that do\[es\] not contain the DPoP header"; its credentials and grant are not at fault
///   (not `invalid_client` nor `invalid_grant`).
pub fn check_token_request(
    client: &ClientRecord,
    method: AuthMethod,
    confirmation: Option<&Confirmation>,
) -> Result<(), OAuthError> {
    if !fapi2(client) {
        return Ok(());
    }
    check_auth_method(method)?;
    if confirmation.is_none() {
        return Err(OAuthError::invalid_request(
            "this client's access tokens must be sender-constrained: send a DPoP proof \
             (RFC 9449) or use mutual TLS (RFC 8705) (FAPI 2.0 §5.3.2.1)",
        ));
    }
    Ok(())
}

/// The lifetime of an authorization code of `client`, from the one otherwise decided:
/// at most [`FAPI2_CODE_TTL`] (60 s) for the profile (FAPI 2.0 §5.3.2.1 item 11).
pub fn code_ttl(client: &ClientRecord, ttl: i64) -> i64 {
    if fapi2(client) {
        ttl.min(FAPI2_CODE_TTL)
    } else {
        ttl
    }
}

/// The lifetime of a pushed request's `request_uri` of `client`, from the server's
/// `par_ttl`: under 600 s for the profile, [`FAPI2_PAR_TTL`] (FAPI 2.0 §5.3.2.2 item 12).
pub fn par_ttl(client: &ClientRecord, ttl: i64) -> i64 {
    if fapi2(client) {
        ttl.min(FAPI2_PAR_TTL)
    } else {
        ttl
    }
}

/// Whether a refresh of `client` rotates its refresh token (RFC 9700 §4.14.2). Not for the
/// profile: FAPI 2.0 §5.3.2.1 item 9, "shall not use refresh token rotation except in
/// extraordinary circumstances" (its Note 1: rotation brings nothing with confidential
/// clients and sender-constrained access tokens, and strands a client that lost the new
/// token). The same refresh token then stays valid until it expires or its grant is revoked,
/// and the token response carries no new one (RFC 6749 §5.1: `refresh_token` is optional).
pub fn rotates_refresh_tokens(client: &ClientRecord) -> bool {
    !fapi2(client)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretHash;

    fn client(profile: ClientProfile) -> ClientRecord {
        let mut c = crate::store::testsuite::client(&SecretHash::of("s"));
        c.secret_hash = None;
        c.jwks = Some("{\"keys\":[]}".into());
        c.user_flow.profile = profile;
        c
    }

    fn b64(v: Value) -> String {
        URL_SAFE_NO_PAD.encode(v.to_string())
    }

    fn assertion_params(alg: &str, aud: Value) -> Params {
        let jws = format!(
            "{}.{}.sig",
            b64(serde_json::json!({ "alg": alg })),
            b64(serde_json::json!({ "aud": aud }))
        );
        Params::from_pairs(vec![("client_assertion".into(), jws)]).unwrap()
    }

    const ISS: &str = "https://as.example.com";

    #[test]
    fn registration_needs_a_confidential_key_client() {
        assert!(check_registration(&client(ClientProfile::Fapi2)).is_ok());
        let mut public = client(ClientProfile::Fapi2);
        public.public = true;
        public.jwks = None;
        assert!(check_registration(&public).is_err());
        let mut secret = client(ClientProfile::Fapi2);
        secret.jwks = None;
        secret.secret_hash = Some(SecretHash::of("s"));
        assert!(check_registration(&secret).is_err());
        secret.user_flow.profile = ClientProfile::None;
        assert!(check_registration(&secret).is_ok());
    }

    #[test]
    fn the_profile_implies_pushed_requests() {
        assert!(requires_par(&client(ClientProfile::Fapi2)));
        assert!(!requires_par(&client(ClientProfile::None)));
    }

    #[test]
    fn pkce_s256_and_redirect_uri_are_required() {
        let ok = [
            ("redirect_uri", "https://app.example.com/cb"),
            (
                "code_challenge",
                "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            ),
            ("code_challenge_method", "S256"),
        ];
        let params = |drop: &str, set: Option<(&str, &str)>| {
            let mut p: Vec<(String, String)> = ok
                .iter()
                .filter(|(k, _)| *k != drop)
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            if let Some((k, v)) = set {
                p.retain(|(name, _)| name != k);
                p.push((k.to_owned(), v.to_owned()));
            }
            Params::from_pairs(p).unwrap()
        };
        let fapi = client(ClientProfile::Fapi2);
        assert!(check_authorization_request(&fapi, &params("", None)).is_ok());
        for (case, p) in [
            ("no redirect_uri", params("redirect_uri", None)),
            ("no challenge", params("code_challenge", None)),
            ("no method (plain)", params("code_challenge_method", None)),
            (
                "plain",
                params("", Some(("code_challenge_method", "plain"))),
            ),
        ] {
            let e = check_authorization_request(&fapi, &p).unwrap_err();
            assert_eq!(e.code.as_str(), "invalid_request", "{case}");
            assert!(
                check_authorization_request(&client(ClientProfile::None), &p).is_ok(),
                "{case}"
            );
        }
    }

    #[test]
    fn only_private_key_jwt_with_the_profiles_algorithms_and_the_issuer_as_aud() {
        let fapi = client(ClientProfile::Fapi2);
        for alg in FAPI2_ALGORITHMS {
            let p = assertion_params(alg, ISS.into());
            assert!(check_client_auth(&fapi, AuthMethod::PrivateKeyJwt, &p, ISS).is_ok());
        }
        for (case, p) in [
            ("RS256", assertion_params("RS256", ISS.into())),
            ("ES384", assertion_params("ES384", ISS.into())),
            ("HS256", assertion_params("HS256", ISS.into())),
            ("none", assertion_params("none", ISS.into())),
            (
                "aud: the token endpoint",
                assertion_params("ES256", format!("{ISS}/oauth2/token").into()),
            ),
            (
                "aud: an array",
                assertion_params("ES256", serde_json::json!([ISS])),
            ),
        ] {
            let e = check_client_auth(&fapi, AuthMethod::PrivateKeyJwt, &p, ISS).unwrap_err();
            assert_eq!(e.code.as_str(), "invalid_client", "{case}");
            let other = client(ClientProfile::None);
            assert!(check_client_auth(&other, AuthMethod::PrivateKeyJwt, &p, ISS).is_ok());
        }
        let empty = Params::from_pairs(Vec::new()).unwrap();
        for m in [
            AuthMethod::ClientSecretBasic,
            AuthMethod::ClientSecretPost,
            AuthMethod::None,
        ] {
            let e = check_client_auth(&fapi, m, &empty, ISS).unwrap_err();
            assert_eq!(e.code.as_str(), "invalid_client", "{m:?}");
            let e = check_token_request(&fapi, m, Some(&Confirmation::Jkt("t".into())));
            assert_eq!(e.unwrap_err().code.as_str(), "invalid_client", "{m:?}");
        }
    }

    #[test]
    fn mutual_tls_is_the_profiles_other_method() {
        let fapi = client(ClientProfile::Fapi2);
        let p = Params::from_pairs(Vec::new()).unwrap();
        for m in [
            AuthMethod::TlsClientAuth,
            AuthMethod::SelfSignedTlsClientAuth,
        ] {
            assert!(check_client_auth(&fapi, m, &p, ISS).is_ok(), "{m:?}");
            let bound = Confirmation::X5tS256("t".into());
            assert!(check_token_request(&fapi, m, Some(&bound)).is_ok(), "{m:?}");
        }
    }

    #[test]
    fn token_requests_must_be_sender_constrained() {
        let fapi = client(ClientProfile::Fapi2);
        let m = AuthMethod::PrivateKeyJwt;
        let e = check_token_request(&fapi, m, None).unwrap_err();
        assert_eq!(e.code.as_str(), "invalid_request");
        for c in [
            Confirmation::Jkt("t".into()),
            Confirmation::X5tS256("t".into()),
        ] {
            assert!(check_token_request(&fapi, m, Some(&c)).is_ok());
        }
        let other = client(ClientProfile::None);
        assert!(check_token_request(&other, AuthMethod::ClientSecretBasic, None).is_ok());
    }

    #[test]
    fn lifetimes_are_capped_for_the_profile_only() {
        let fapi = client(ClientProfile::Fapi2);
        let other = client(ClientProfile::None);
        assert_eq!(code_ttl(&fapi, 120), 60);
        assert_eq!(code_ttl(&fapi, 30), 30);
        assert_eq!(code_ttl(&other, 120), 120);
        assert_eq!(par_ttl(&fapi, 600), 599);
        assert_eq!(par_ttl(&fapi, 60), 60);
        assert_eq!(par_ttl(&other, 600), 600);
        assert!(!rotates_refresh_tokens(&fapi));
        assert!(rotates_refresh_tokens(&other));
    }
}
