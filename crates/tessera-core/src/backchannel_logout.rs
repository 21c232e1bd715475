//! OpenID Connect Back-Channel Logout 1.0: what a client registers and the logout token.
//!
//! Owns [`validate_uri`], the rule for a client's `backchannel_logout_uri` (§2.2: an absolute
//! URI without a fragment; here, as for redirect URIs, `https`, or `http` only on a loopback
//! host, and no user information, so that a registration cannot point the server's own
//! requests at a plain-text or credentialed address), [`logout_token`] (§2.4: a JWT signed
//! by the server's current key with `typ: logout+jwt`, carrying `iss`, `aud`, `iat`, a short
//! `exp`, `jti`, the back-channel logout `events` member, and `sub` and/or `sid`, never a
//! `nonce`) and [`deliveries`], which turns the grants a session (or a user) signed into
//! into one logout token per client and session, honouring
//! `backchannel_logout_session_required` (§2.2: such a client always gets `sid`, so a grant
//! with no known session is not announced to it). [`ending`], the one trigger, runs the change
//! that ends a user's sign-ins and puts what it owes into the store's outbox (§2.5); sending
//! is the HTTP layer's job, with the [`backoff`] defined here.

use std::collections::BTreeSet;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};

use crate::keys::{KeyError, KeySet};
use crate::model::{ClientRecord, GrantRecord, LogoutDeliveryRecord};
use crate::store::{ClientStore, GrantStore, Store, StoreError};

/// The member of `events` that makes a JWT a logout token (§2.4).
pub const LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// The JWS `typ` of logout tokens (§2.4, as RFC 8725 §3.11 recommends).
pub const LOGOUT_TOKEN_TYPE: &str = "logout+jwt";

/// How long a logout token is valid, seconds: §2.4 asks for a short lifetime; two minutes
/// cover clock skew and a delivery retried within them.
pub const LOGOUT_TOKEN_TTL: i64 = 120;

/// Why a back-channel logout URI cannot be registered.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("backchannel_logout_uri '{uri}' {reason}")]
pub struct LogoutUriError {
    uri: String,
    reason: String,
}

/// Checks a back-channel logout URI for registration (see the module documentation).
pub fn validate_uri(uri: &str) -> Result<(), LogoutUriError> {
    let err = |reason: String| {
        Err(LogoutUriError {
            uri: uri.chars().take(200).collect(),
            reason,
        })
    };
    if let Err(e) = crate::redirect_uri::validate_registration(uri) {
        let text = e.to_string();
        let reason = text.split_once("' ").map_or(text.as_str(), |(_, r)| r);
        return err(reason.to_owned());
    }
    let Some(rest) = uri
        .strip_prefix("https://")
        .or_else(|| uri.strip_prefix("http://"))
    else {
        return err("must use https (or http on a loopback host)".into());
    };
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    if authority.contains('@') {
        return err("must not contain user information".into());
    }
    Ok(())
}

/// One logout token to send: to whom, where, about what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The client, the token's `aud`.
    pub client_id: String,
    /// Its `backchannel_logout_uri`.
    pub uri: String,
    /// The user (`sub`).
    pub sub: String,
    /// The session that ended (`sid`), when known.
    pub sid: Option<String>,
}

/// The logout tokens owed for `grants` (the grants of an ended session, or of a user whose
/// sessions all ended): one per client with a `backchannel_logout_uri` and session (`sid`),
/// in the grants' order. `client` finds a grant's client; a client that is gone or has no
/// URI gets nothing, and a client that requires `sid` gets nothing about a grant from no
/// known session.
pub fn deliveries<'a>(
    grants: &[GrantRecord],
    client: impl Fn(&str) -> Option<&'a ClientRecord>,
) -> Vec<Delivery> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for g in grants {
        let Some(c) = client(&g.client_id) else {
            continue;
        };
        let Some(uri) = &c.user_flow.backchannel_logout_uri else {
            continue;
        };
        if c.user_flow.backchannel_logout_session_required && g.sid.is_none() {
            continue;
        }
        if !seen.insert((g.client_id.clone(), g.user_id.clone(), g.sid.clone())) {
            continue;
        }
        out.push(Delivery {
            client_id: g.client_id.clone(),
            uri: uri.clone(),
            sub: g.user_id.clone(),
            sid: g.sid.clone(),
        });
    }
    out
}

/// The most logout tokens that may ever wait in the outbox, whatever the server's setting:
/// past it, queueing drops the oldest (and logs it), so that a flood of logouts cannot fill
/// the database even with no server running. The server's own, smaller bound
/// (`backchannel_logout_max_queued`, 10 000 by default) is applied by its delivery worker.
pub const MAX_QUEUED: u64 = 1_000_000;

/// The wait before attempt `attempts + 1` after `attempts` failed ones, seconds: doubling
/// from 1, at most 64.
pub fn backoff(attempts: i64) -> i64 {
    1_i64 << attempts.clamp(0, 6)
}

/// Whose sign-ins end, for [`ending`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending<'a> {
    /// One sign-in session, by its `sid` (RP-initiated logout): every client it signed into.
    Session(&'a str),
    /// Every sign-in of a user, by user id (a password change, the user deleted, an operator
    /// revoking the user's tokens): the clients of the user's live grants.
    User(&'a str),
    /// A user's grants to one client (user id, client id: an operator withdrawing the user's
    /// consent to it): that client, if it held a live grant.
    UserClient(&'a str, &'a str),
    /// One grant, by id (an operator revoking it): its client, if the grant was live.
    Grant(&'a str),
}

/// The one trigger of back-channel logout (§2.5). Finds the clients `who` signed into, runs
/// `end` (the change that ends those sessions or revokes those grants) and, once it has
/// succeeded, queues a logout token for each of them, due at once. Every path that ends a
/// user's sign-ins goes through here: RP-initiated logout (the logout page), an operator
/// revoking a user's tokens, one grant or a consent (CLI and admin API), a password change
/// and a user's deletion. A failed `end` queues nothing.
pub async fn ending<T, E: From<StoreError>>(
    store: &dyn Store,
    who: Ending<'_>,
    now: i64,
    end: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let live = |g: &GrantRecord| g.revoked_at.is_none();
    let grants: Vec<GrantRecord> = match who {
        Ending::Session(sid) => store.session_grants(sid).await?,
        Ending::User(user) => store
            .list_user_grants(user)
            .await?
            .into_iter()
            .filter(live)
            .collect(),
        Ending::UserClient(user, client) => store
            .list_user_grants(user)
            .await?
            .into_iter()
            .filter(|g| live(g) && g.client_id == client)
            .collect(),
        Ending::Grant(id) => store
            .get_grant(id)
            .await?
            .into_iter()
            .filter(live)
            .collect(),
    };
    let done = end.await?;
    queue_for_grants(store, &grants, now).await?;
    Ok(done)
}

/// Queues the logout tokens owed to the clients of `grants` (see [`deliveries`]); returns how
/// many were queued. Called by [`ending`].
async fn queue_for_grants<S: GrantStore + ClientStore + ?Sized>(
    store: &S,
    grants: &[GrantRecord],
    now: i64,
) -> Result<usize, StoreError> {
    let mut clients = Vec::new();
    for g in grants {
        if !clients
            .iter()
            .any(|c: &ClientRecord| c.client_id == g.client_id)
        {
            if let Some(c) = store.get_client(&g.client_id).await? {
                clients.push(c);
            }
        }
    }
    let owed = deliveries(grants, |id| clients.iter().find(|c| c.client_id == id));
    let rows: Vec<LogoutDeliveryRecord> = owed
        .into_iter()
        .map(|d| LogoutDeliveryRecord {
            id: crate::secret::generate_id(),
            client_id: d.client_id,
            uri: d.uri,
            sub: d.sub,
            sid: d.sid,
            attempts: 0,
            next_attempt_at: now,
            created_at: now,
        })
        .collect();
    if rows.is_empty() {
        return Ok(0);
    }
    let dropped = store.queue_logouts(&rows, MAX_QUEUED).await?;
    if dropped > 0 {
        tracing::warn!(
            dropped,
            "the logout token outbox is full: the oldest waiting deliveries were dropped"
        );
    }
    Ok(rows.len())
}

/// Signs the logout token of `d` (§2.4) as `issuer` with the current key at `now`.
pub fn logout_token(
    keys: &KeySet,
    issuer: &str,
    d: &Delivery,
    now: i64,
) -> Result<String, KeyError> {
    let key = keys.signing_key(now)?;
    let mut claims = json!({
        "iss": issuer,
        "aud": d.client_id,
        "iat": now,
        "exp": now.saturating_add(LOGOUT_TOKEN_TTL),
        "jti": crate::secret::generate_id(),
        "events": { LOGOUT_EVENT: {} },
        "sub": d.sub,
    });
    if let (Some(sid), Value::Object(map)) = (&d.sid, &mut claims) {
        map.insert("sid".into(), json!(sid));
    }
    let header = json!({"alg": key.alg.as_str(), "kid": key.kid, "typ": LOGOUT_TOKEN_TYPE});
    let mut out = URL_SAFE_NO_PAD.encode(header.to_string());
    out.push('.');
    URL_SAFE_NO_PAD.encode_string(claims.to_string(), &mut out);
    let sig = key.sign(out.as_bytes())?;
    out.push('.');
    URL_SAFE_NO_PAD.encode_string(sig, &mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{generate_key, Sealer, SigningAlg};
    use crate::model::UserFlowSettings;

    const NOW: i64 = 1_700_000_000;

    #[test]
    fn only_https_or_loopback_http_without_credentials_or_fragment() {
        for ok in [
            "https://rp.example.com/logout",
            "https://rp.example.com:8443/bc?tenant=a",
            "http://127.0.0.1:9000/logout",
            "http://localhost/logout",
            "http://[::1]:80/x",
        ] {
            assert_eq!(validate_uri(ok), Ok(()), "{ok}");
        }
        for bad in [
            "http://rp.example.com/logout",
            "https://rp.example.com/logout#f",
            "https://user:pw@rp.example.com/logout",
            "https://user@rp.example.com/",
            "com.example.app:/logout",
            "javascript:alert(1)",
            "file:///etc/passwd",
            "/relative",
            "",
            "https://",
            "https://*.example.com/",
        ] {
            assert!(validate_uri(bad).is_err(), "{bad}");
        }
    }

    fn client(id: &str, uri: Option<&str>, session_required: bool) -> ClientRecord {
        let mut c = crate::store::testsuite::client(&crate::secret::SecretHash::of("s"));
        c.client_id = id.into();
        c.user_flow = UserFlowSettings {
            backchannel_logout_uri: uri.map(str::to_owned),
            backchannel_logout_session_required: session_required,
            ..UserFlowSettings::default()
        };
        c
    }

    fn grant(id: &str, client_id: &str, sid: Option<&str>) -> GrantRecord {
        GrantRecord {
            client_id: client_id.into(),
            sid: sid.map(str::to_owned),
            ..crate::store::testsuite::grant(id, "u1", NOW + 100)
        }
    }

    #[test]
    fn one_delivery_per_client_and_session_and_none_without_a_uri_or_a_required_sid() {
        let clients = [
            client("a", Some("https://a.example/bc"), false),
            client("b", Some("https://b.example/bc"), true),
            client("c", None, false),
        ];
        let find = |id: &str| clients.iter().find(|c| c.client_id == id);
        let grants = [
            grant("g1", "a", Some("s1")),
            grant("g2", "a", Some("s1")),
            grant("g3", "b", Some("s1")),
            grant("g4", "b", None),
            grant("g5", "a", None),
            grant("g6", "c", Some("s1")),
            grant("g7", "gone", Some("s1")),
        ];
        let d = deliveries(&grants, find);
        let got: Vec<(&str, Option<&str>)> = d
            .iter()
            .map(|d| (d.client_id.as_str(), d.sid.as_deref()))
            .collect();
        assert_eq!(got, [("a", Some("s1")), ("b", Some("s1")), ("a", None)]);
        assert_eq!(d[1].uri, "https://b.example/bc");
        assert!(d.iter().all(|d| d.sub == "u1"));
    }

    #[test]
    fn a_logout_token_has_every_claim_of_section_2_4_and_no_nonce() {
        let sealer = Sealer::from_secret(b"0123456789abcdef0123456789abcdef").unwrap();
        let keys = KeySet::load(
            &[generate_key(SigningAlg::Es256, &sealer, 0, 0).unwrap()],
            &sealer,
        )
        .unwrap();
        let d = Delivery {
            client_id: "c1".into(),
            uri: "https://rp.example/bc".into(),
            sub: "u1".into(),
            sid: Some("s1".into()),
        };
        let token = logout_token(&keys, "https://auth.example.com", &d, NOW).unwrap();
        let part = |i: usize| -> Value {
            let p = token.split('.').nth(i).unwrap();
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap()
        };
        let (header, claims) = (part(0), part(1));
        assert_eq!(header["typ"], "logout+jwt");
        assert_eq!(header["alg"], "ES256");
        let key = keys.verifier(header["kid"].as_str().unwrap(), NOW).unwrap();
        let (signed, sig) = token.rsplit_once('.').unwrap();
        assert!(key.verify(signed.as_bytes(), &URL_SAFE_NO_PAD.decode(sig).unwrap()));
        assert_eq!(claims["iss"], "https://auth.example.com");
        assert_eq!(claims["aud"], "c1");
        assert_eq!(claims["iat"], NOW);
        assert_eq!(claims["exp"], NOW + LOGOUT_TOKEN_TTL);
        assert_eq!(claims["sub"], "u1");
        assert_eq!(claims["sid"], "s1");
        assert_eq!(claims["events"], json!({ LOGOUT_EVENT: {} }));
        assert!(claims["jti"].as_str().unwrap().len() >= 16);
        assert!(claims.get("nonce").is_none());
        let again = logout_token(&keys, "https://auth.example.com", &d, NOW).unwrap();
        let jti = |t: &str| -> Value {
            let p = t.split('.').nth(1).unwrap();
            serde_json::from_slice::<Value>(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap()["jti"]
                .clone()
        };
        assert_ne!(jti(&token), jti(&again));
        let no_sid = Delivery { sid: None, ..d };
        let t = logout_token(&keys, "https://auth.example.com", &no_sid, NOW).unwrap();
        let p = t.split('.').nth(1).unwrap();
        let c: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap();
        assert!(c.get("sid").is_none());
        assert_eq!(c["sub"], "u1");
    }

    #[tokio::test]
    async fn the_trigger_queues_for_whom_the_change_ended_and_only_once_it_succeeded() {
        use crate::store::memory::MemoryStore;
        let store = MemoryStore::new();
        for (id, uri) in [("a", "https://a.example/bc"), ("b", "https://b.example/bc")] {
            store
                .insert_client(&client(id, Some(uri), false))
                .await
                .unwrap();
        }
        for (id, c, sid) in [("g-a", "a", "s1"), ("g-b", "b", "s2")] {
            store
                .insert_grant(&grant(id, c, Some(sid)), None)
                .await
                .unwrap();
        }
        async fn queued(store: &MemoryStore, at: i64) -> Vec<String> {
            let mut out: Vec<String> = store
                .claim_logouts(at, at + 1_000_000, 100)
                .await
                .unwrap()
                .into_iter()
                .map(|r| format!("{}:{}", r.client_id, r.sid.unwrap_or_default()))
                .collect();
            out.sort();
            out
        }
        // A failed change queues nothing.
        let failed = ending(&store, Ending::User("u1"), NOW, async {
            Err::<(), StoreError>(StoreError::Backend("down".into()))
        })
        .await;
        assert!(failed.is_err());
        assert_eq!(queued(&store, NOW).await, Vec::<String>::new());
        // One session: its clients only.
        ending(&store, Ending::Session("s2"), NOW, async {
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
        assert_eq!(queued(&store, NOW).await, ["b:s2"]);
        // One client of a user; one grant; a revoked grant tells nobody.
        ending(&store, Ending::UserClient("u1", "a"), NOW, async {
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
        assert_eq!(queued(&store, NOW + 10).await, ["a:s1"]);
        store.revoke_grant("g-a", NOW).await.unwrap();
        ending(&store, Ending::Grant("g-a"), NOW, async {
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
        ending(&store, Ending::Grant("g-b"), NOW, async {
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
        assert_eq!(queued(&store, NOW + 20).await, ["b:s2"]);
        // A user: the clients of their live grants.
        ending(&store, Ending::User("u1"), NOW, async {
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
        assert_eq!(queued(&store, NOW + 30).await, ["b:s2"]);
    }
}
