//! The audit trail as the protocol handlers write it: a replayed code or refresh token and a
//! revocation are recorded with who, what and how it ended; successes of the token endpoint
//! and refusals that reveal nothing are not; no token value is ever in an entry.

use tessera_core::error::ErrorCode;
use tessera_core::model::{AuditFilter, AuditRecord, RefreshPolicy};
use tessera_core::store::AuditStore;

use crate::support::*;

/// Every entry of the trail, newest first.
fn trail(w: &World) -> Vec<AuditRecord> {
    run(w.store.list_audit(&AuditFilter {
        limit: 1000,
        ..AuditFilter::default()
    }))
    .unwrap()
}

fn detail(r: &AuditRecord) -> serde_json::Value {
    serde_json::from_str(&r.detail).unwrap()
}

/// No entry holds any of `values` anywhere.
fn holds_none(w: &World, values: &[&str]) {
    for r in trail(w) {
        let row = format!("{r:?}");
        for v in values {
            assert!(!row.contains(v), "{row} holds a secret");
        }
    }
}

#[test]
fn a_code_replayed_by_its_client_is_recorded_with_the_grant_revoked() {
    let w = World::new();
    let c = w.code_client(|c| c.user_flow.refresh_tokens = RefreshPolicy::Always);
    let alice = w.user("alice");
    let code = w.code(&c, &alice, "openid read");
    let first = w.exchange(&c, &code, &[]).unwrap();
    assert!(
        trail(&w).is_empty(),
        "a successful exchange is not recorded"
    );
    refused(
        "replay",
        w.exchange(&c, &code, &[]),
        ErrorCode::InvalidGrant,
        "already used",
    );
    let t = trail(&w);
    assert_eq!(t.len(), 1, "{t:?}");
    let e = &t[0];
    assert_eq!(e.kind, "code_replayed");
    assert_eq!(e.actor, format!("client:{}", c.id));
    assert_eq!(e.target.as_deref(), Some(c.id.as_str()));
    assert_eq!(e.outcome, "failure");
    assert_eq!(e.at, w.now());
    assert_eq!(detail(e)["grant_revoked"], true);
    assert!(detail(e)["grant_id"].is_string());
    holds_none(
        &w,
        &[
            &code,
            &at(&first),
            &rt(&first),
            c.secret.as_deref().unwrap(),
        ],
    );
}

#[test]
fn a_code_replayed_by_another_client_is_recorded_and_revokes_nothing() {
    let w = World::new();
    let c = w.code_client(|_| {});
    let other = w.code_client(|_| {});
    let alice = w.user("alice");
    let code = w.code(&c, &alice, "openid");
    let first = w.exchange(&c, &code, &[]).unwrap();
    refused(
        "another client",
        w.exchange(&other, &code, &[]),
        ErrorCode::InvalidGrant,
        "invalid or expired",
    );
    assert!(w.look(&at(&first)).is_some());
    let t = trail(&w);
    assert_eq!(t.len(), 1, "{t:?}");
    assert_eq!(t[0].kind, "code_replayed");
    assert_eq!(
        t[0].actor,
        format!("client:{}", other.id),
        "who presented it"
    );
    assert_eq!(
        t[0].target.as_deref(),
        Some(c.id.as_str()),
        "whose code it was"
    );
    assert_eq!(detail(&t[0])["grant_revoked"], false);
}

#[test]
fn a_replayed_refresh_token_is_recorded_and_a_repeat_within_grace_is_not() {
    let w = World::new();
    let c = w.code_client(|c| {
        c.user_flow.refresh_tokens = RefreshPolicy::Always;
        c.user_flow.refresh_grace_period = 30;
    });
    let alice = w.user("alice");
    let t0 = w.tokens(&c, &alice, "openid");
    let t1 = w.refresh(&c, &rt(&t0), &[]).unwrap();
    // Within the grace period and with the successor unused: the same successor, no event.
    w.advance(5);
    w.refresh(&c, &rt(&t0), &[]).unwrap();
    assert!(trail(&w).is_empty(), "{:?}", trail(&w));
    // Once the successor is used, the old token again is a replay.
    let t2 = w.refresh(&c, &rt(&t1), &[]).unwrap();
    refused(
        "replay",
        w.refresh(&c, &rt(&t0), &[]),
        ErrorCode::InvalidGrant,
        "already used",
    );
    let t = trail(&w);
    assert_eq!(t.len(), 1, "{t:?}");
    assert_eq!(t[0].kind, "refresh_token_replayed");
    assert_eq!(t[0].actor, format!("client:{}", c.id));
    assert_eq!(t[0].outcome, "failure");
    assert_eq!(detail(&t[0])["user_id"], alice.user_id);
    holds_none(&w, &[&rt(&t0), &rt(&t1), &rt(&t2), &at(&t2)]);
}

#[test]
fn a_revocation_is_recorded_only_when_it_revoked_something() {
    let w = World::new();
    let c = w.code_client(|c| c.user_flow.refresh_tokens = RefreshPolicy::Always);
    let other = w.code_client(|_| {});
    let alice = w.user("alice");
    let t = w.tokens(&c, &alice, "openid");
    w.revoke(&c, "not-a-token").unwrap();
    // Another client's token: RFC 7009 answers 200 and nothing happens.
    w.revoke(&other, &rt(&t)).unwrap();
    assert!(trail(&w).is_empty(), "{:?}", trail(&w));
    w.revoke(&c, &rt(&t)).unwrap();
    let list = trail(&w);
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0].kind, "token_revoked");
    assert_eq!(list[0].actor, format!("client:{}", c.id));
    assert_eq!(detail(&list[0])["token_type"], "refresh_token");
    holds_none(&w, &[&rt(&t), &at(&t)]);
}
