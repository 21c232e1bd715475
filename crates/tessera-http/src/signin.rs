//! Signing in with a username and password: the throttle and the device cookie around the
//! core's sign-in.
//!
//! Owns [`sign_in`] and the device cookie. OWASP's *device cookies* (Authentication Cheat
//! Sheet): a browser that signed in as a user gets a cookie signed with the server's secret
//! that names that user (by the hash of the username) with a random nonce. A later sign-in
//! attempt for that user from that browser is paid from the browser's own budget
//! (`login_failures_per_device`); an attempt from any other browser is paid from the budget
//! that unknown browsers share for that username (`login_failures_per_user`). Every attempt is
//! also paid from the address's budget (`login_failures_per_address`). So an attacker who
//! guesses at someone's password, from anywhere, locks out only unknown browsers for that
//! username, and the user keeps signing in from a browser they used before.
//!
//! The attempts are taken before the password is checked and given back when it matched
//! (see [`crate::throttle`]). Finding the user, checking the password and starting the
//! session are the core's ([`tessera_core::signin`], [`tessera_core::session`]); the check
//! itself waits for a slot of [`crate::password_checks::PasswordChecks`].

use std::net::IpAddr;

use axum::http::{HeaderMap, HeaderValue};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use subtle::ConstantTimeEq;
use tessera_core::audit::{self, Actor, AuditEvent, AuditKind};
use tessera_core::cx::Cx;
use tessera_core::secret::random_bytes;
use tessera_core::session::{self, Started};
use tessera_core::signin::password::{CheckRunner, PasswordCheck, PasswordForm, PasswordSignIn};
use tessera_core::signin::{Identity, SignInError, SignInMethod};
use tessera_core::OAuthError;

use crate::pages;
use crate::password_checks::PasswordChecks;
use crate::state::AppState;
use crate::throttle::{address_bucket, budget_key, Reservation};

/// Most device entries one browser keeps (one per user it signed in as, newest first).
const MAX_DEVICE_ENTRIES: usize = 2;
/// Bytes of the device cookie's MAC that are kept (128 bits).
const DEVICE_MAC_LEN: usize = 16;

/// What a sign-in attempt came to.
pub enum SignIn {
    /// The password matched: a session was started.
    SignedIn {
        /// Who signed in.
        identity: Box<Identity>,
        /// The session started (its value goes in the session cookie).
        session: Started,
        /// The device cookie to set.
        device_cookie: Option<HeaderValue>,
    },
    /// The username or password was wrong.
    Failed,
    /// A budget this attempt would be paid from is spent: refused unchecked until `until`.
    Locked {
        /// Seconds until the budget refills.
        retry_after: i64,
    },
    /// Every password-check slot and queue place is taken: refused unchecked.
    Busy,
}

/// The device cookie's name.
fn device_cookie_name(state: &AppState) -> &'static str {
    if state.cookies().session().starts_with("__Host-") {
        "__Host-tessera_device"
    } else {
        "tessera_device"
    }
}

/// The MAC of one device entry: binds the nonce to the user.
fn device_mac(state: &AppState, user_key: &str, nonce: &str) -> [u8; DEVICE_MAC_LEN] {
    let tag = state
        .sealer()
        .mac(format!("device:{user_key}:{nonce}").as_bytes());
    let mut out = [0u8; DEVICE_MAC_LEN];
    for (o, t) in out.iter_mut().zip(tag) {
        *o = t;
    }
    out
}

/// The entries of the browser's device cookie: `nonce.mac`, `~`-separated.
fn device_entries(state: &AppState, headers: &HeaderMap) -> Vec<String> {
    pages::cookie(headers, device_cookie_name(state))
        .map(|v| {
            v.split('~')
                .filter(|e| !e.is_empty())
                .take(MAX_DEVICE_ENTRIES)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The nonce of the browser's device entry for this user, if its MAC verifies.
fn device_nonce_for(state: &AppState, entries: &[String], user_key: &str) -> Option<String> {
    entries.iter().find_map(|e| {
        let (nonce, mac) = e.split_once('.')?;
        let mac = URL_SAFE_NO_PAD.decode(mac).ok()?;
        let expected = device_mac(state, user_key, nonce);
        bool::from(expected.as_slice().ct_eq(&mac)).then(|| nonce.to_owned())
    })
}

/// The device cookie after a sign-in as this user: this user's entry first (kept when the
/// browser already had one), then the others it had.
fn device_cookie_after(
    state: &AppState,
    entries: &[String],
    user_key: &str,
    known: Option<&str>,
) -> Option<HeaderValue> {
    let entry = match known {
        Some(nonce) => {
            let mac = device_mac(state, user_key, nonce);
            format!("{nonce}.{}", URL_SAFE_NO_PAD.encode(mac))
        }
        None => {
            let nonce = URL_SAFE_NO_PAD.encode(random_bytes::<16>());
            let mac = device_mac(state, user_key, &nonce);
            format!("{nonce}.{}", URL_SAFE_NO_PAD.encode(mac))
        }
    };
    let mut all = vec![entry.clone()];
    all.extend(
        entries
            .iter()
            .filter(|e| **e != entry)
            .take(MAX_DEVICE_ENTRIES - 1)
            .cloned(),
    );
    state.cookies().set(
        device_cookie_name(state),
        &all.join("~"),
        state.http().device_cookie_ttl,
    )
}

/// One sign-in attempt from the login form: takes the attempt from the budgets it is paid
/// from, signs in with the core's password method
/// ([`tessera_core::signin::password::PasswordSignIn`]) whose checks run in a password-check
/// slot, and on success starts a session (replacing the browser's previous one,
/// [`tessera_core::session::start`]) and gives the attempts back.
pub async fn sign_in(
    state: &AppState,
    cx: &Cx<'_>,
    headers: &HeaderMap,
    ip: Option<IpAddr>,
    form: &PasswordForm,
) -> Result<SignIn, OAuthError> {
    let http = state.http();
    let now = cx.now;
    // One key for counting and checking: the hash of the whole name, however long.
    let user_key = budget_key(state.sealer(), "user", &[form.username()]);
    let entries = device_entries(state, headers);
    let device = device_nonce_for(state, &entries, &user_key);
    // The user's (or device's) budget first: against one user, the usual target, a spent
    // budget is then refused before anything is written.
    let mut budgets = Vec::with_capacity(2);
    match &device {
        Some(nonce) => budgets.push((
            budget_key(state.sealer(), "signin-device", &[&user_key, nonce]),
            http.login_failures_per_device,
        )),
        None => budgets.push((
            budget_key(state.sealer(), "signin-user", &[&user_key]),
            http.login_failures_per_user,
        )),
    }
    if let Some(ip) = ip {
        budgets.push((
            budget_key(state.sealer(), "signin-address", &[&address_bucket(ip)]),
            http.login_failures_per_address,
        ));
    }
    let store = state.store();
    let window = http.login_lockout_window;
    let reservation = match Reservation::take(store, &budgets, window, now).await? {
        Ok(r) => r,
        Err(until) => {
            record_lockout(cx, form).await;
            return Ok(SignIn::Locked {
                retry_after: (until - now).max(1),
            });
        }
    };
    let identity = match PasswordSignIn::new(state.password_checks())
        .sign_in(cx.store, form, now)
        .await
    {
        Ok(identity) => identity,
        Err(SignInError::Rejected) => return Ok(SignIn::Failed),
        Err(SignInError::Busy) => {
            // Not checked: not a failure either.
            reservation.give_back(store, now).await?;
            return Ok(SignIn::Busy);
        }
        Err(SignInError::Store(e)) => return Err(e.into()),
    };
    reservation.give_back(store, now).await?;
    let started = session::start(
        cx.store,
        &identity,
        cx.config.session_ttl,
        now,
        pages::cookie(headers, state.cookies().session()),
    )
    .await?;
    let device_cookie = device_cookie_after(state, &entries, &user_key, device.as_deref());
    Ok(SignIn::SignedIn {
        identity: Box::new(identity),
        session: started,
        device_cookie,
    })
}

/// Records a sign-in refused by a spent budget in the audit trail: the user's id as the
/// target when the name is a user's (never the name as typed: it may be a password typed in
/// the wrong field), the request and its address.
async fn record_lockout(cx: &Cx<'_>, form: &PasswordForm) {
    let user = cx.store.find_user(form.username()).await.ok().flatten();
    let mut event = AuditEvent::new(cx.now, AuditKind::SignInLockedOut, Actor::Anonymous)
        .failed()
        .request(&cx.request)
        .detail(serde_json::json!({ "known_user": user.is_some() }));
    if let Some(user) = user {
        event = event.target(user.user_id);
    }
    audit::record(cx.store, event).await;
}

/// The server's password-check slots run the core's password checks.
#[async_trait::async_trait]
impl CheckRunner for PasswordChecks {
    async fn run(&self, check: PasswordCheck) -> Option<bool> {
        PasswordChecks::run(self, check).await
    }
}
