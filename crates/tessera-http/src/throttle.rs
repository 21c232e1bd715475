//! Throttling of sign-in and client authentication (RFC 6819 §4.3.2 and §5.1.4.2.3; OWASP's
//! Authentication Cheat Sheet, "Device Cookies").
//!
//! Owns the budget keys, [`count_client_auth_failure`] and [`Reservation`] (the budget of
//! password checks is [`crate::password_checks`]). Every budget lives in the shared store
//! ([`ThrottleStore`]), so every node counts against the same numbers, and an attempt is
//! taken from a budget in one atomic statement *before* the work it pays for, so parallel
//! requests cannot all slip under a limit read beforehand. Budgets leave the store only when
//! their window ends (the purge), never because many others are tracked.
//!
//! - **Client authentication** is checked first, always: a client secret has 256 random bits
//!   and a failure costs one SHA-256, so a throttle adds nothing against guessing, and valid
//!   credentials are never refused. A failure takes an attempt from the budget of that client
//!   id *at that address*; past the limit, failures are answered `429 slow_down` with
//!   `Retry-After` instead of `401`, which tells a client retrying with a stale secret to back
//!   off and touches no other client behind the same address.
//! - **Sign-in** takes an attempt from the address's budget and from either the browser's
//!   device budget (it holds a device cookie from an earlier sign-in as that user, see
//!   [`crate::signin`]) or the budget that every unknown browser shares for the username,
//!   before the password is checked; a sign-in that succeeds gives its attempts back.
//! - **User codes** typed on the device verification page (RFC 8628 §5.1) are paid from the
//!   address's budget, and **device authorizations** from the budget of the client at the
//!   address ([`take_user_code_attempt`], [`take_device_authorization`]).

use std::net::IpAddr;
use tessera_core::keys::Sealer;
use tessera_core::store::{Attempt, StoreError, ThrottleStore};

use crate::state::AppState;

/// The window of the client-authentication budget, seconds.
pub const CLIENT_AUTH_WINDOW: i64 = 60;

/// The store key of a budget: a kind and a MAC, under the server's secret, of its parts, so a
/// key has a fixed length whatever was presented (a username of any length, a client id), and
/// the table holds no username or address, not even as a plain hash that could be reversed by
/// trying every IPv4 address. Every node sharing the secret derives the same keys.
pub fn budget_key(sealer: &Sealer, kind: &str, parts: &[&str]) -> String {
    // Domain-separated from the server's other MACs (CSRF tokens, cookies).
    let mut joined = String::from("tessera/throttle-budget\0");
    for p in parts {
        // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
        joined.push_str(&p.len().to_string());
        joined.push(':');
        joined.push_str(p);
    }
    let tag: String = sealer
        .mac(joined.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{kind}:{tag}")
}

/// What counting one failed client authentication found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// Counted, with attempts left in the window (or no budget at all).
    Within,
    /// Counted as the last attempt of the window: the budget is spent now, and further
    /// failures are refused until the window ends (a lock-out begins).
    Spent,
    /// Not counted: the budget was already spent until this second.
    Refused {
        /// When the window ends.
        until: i64,
    },
}

/// Counts a failed client authentication by `client_id` from `ip`, and says whether this
/// failure is the one that spent the budget of that client at that address, or whether it
/// was spent already (until when): the caller answers `429` until then instead of `401`.
pub async fn count_client_auth_failure(
    state: &AppState,
    ip: Option<IpAddr>,
    client_id: &str,
) -> Result<Counted, StoreError> {
    let limit = state.http().auth_failures_per_minute;
    let Some(ip) = ip.filter(|_| limit > 0) else {
        return Ok(Counted::Within);
    };
    let key = budget_key(state.sealer(), "client", &[&ip.to_string(), client_id]);
    let now = state.now();
    match state
        .store()
        .take_attempt(&key, limit, CLIENT_AUTH_WINDOW, now)
        .await?
    {
        Attempt::Taken(n) if n >= limit => Ok(Counted::Spent),
        Attempt::Taken(_) => Ok(Counted::Within),
        Attempt::Refused { until } => Ok(Counted::Refused { until }),
    }
}

/// Attempts taken from several budgets at once, for one sign-in.
#[derive(Debug, Default)]
pub struct Reservation {
    keys: Vec<String>,
}

impl Reservation {
    /// Takes one attempt from each `(key, limit)` budget (a limit of 0 is no budget), in
    /// order. When one is spent, gives back those already taken and returns the second the
    /// spent one refills.
    pub async fn take(
        store: &dyn ThrottleStore,
        budgets: &[(String, u32)],
        window: i64,
        now: i64,
    ) -> Result<Result<Self, i64>, StoreError> {
        let mut taken = Self::default();
        for (key, limit) in budgets.iter().filter(|(_, l)| *l > 0) {
            match store.take_attempt(key, *limit, window, now).await {
                Ok(Attempt::Taken(_)) => taken.keys.push(key.clone()),
                Ok(Attempt::Refused { until }) => {
                    taken.give_back(store, now).await?;
                    return Ok(Err(until));
                }
                Err(e) => {
                    // Best effort: the error is what the caller needs to hear.
                    let _ = taken.give_back(store, now).await;
                    return Err(e);
                }
            }
        }
        Ok(Ok(taken))
    }

    /// Gives every attempt back: what it paid for was not a failure (or never ran).
    pub async fn give_back(self, store: &dyn ThrottleStore, now: i64) -> Result<(), StoreError> {
        for key in &self.keys {
            store.return_attempt(key, now).await?;
        }
        Ok(())
    }
}

/// Takes one attempt from the budget of user codes typed at `ip` on the device verification
/// page (RFC 8628 §5.1), before the code is looked up; the caller gives it back when the code
/// named a device authorization. `Err(until)`: the budget is spent until then. Paid by the
/// address alone, so a guesser locks out only their own address.
pub async fn take_user_code_attempt(
    state: &AppState,
    ip: Option<IpAddr>,
) -> Result<Result<Reservation, i64>, StoreError> {
    let http = state.http();
    let budgets: Vec<(String, u32)> = ip
        .map(|ip| {
            let key = budget_key(state.sealer(), "device-user-code", &[&ip.to_string()]);
            (key, http.user_code_failures_per_address)
        })
        .into_iter()
        .collect();
    Reservation::take(
        state.store(),
        &budgets,
        http.login_lockout_window,
        state.now(),
    )
    .await
}

/// Takes one device authorization from the budget of `client_id` at `ip` (RFC 8628 §3.1),
/// whose window is the device code's lifetime, so no more than twice the limit are pending
/// for that client from that address at any time. The caller gives it back when no
/// authorization was made. `Err(until)`: spent until then. Per client *and* address: anyone
/// can name a public client, and a caller filling the budget fills only their own.
pub async fn take_device_authorization(
    state: &AppState,
    ip: Option<IpAddr>,
    client_id: &str,
) -> Result<Result<Reservation, i64>, StoreError> {
    let limit = state.http().device_codes_per_client_address;
    let budgets: Vec<(String, u32)> = ip
        .map(|ip| {
            let key = budget_key(
                state.sealer(),
                "device-client",
                &[&ip.to_string(), client_id],
            );
            (key, limit)
        })
        .into_iter()
        .collect();
    let window = tessera_core::endpoint::device_authorization::DEVICE_CODE_TTL;
    Reservation::take(state.store(), &budgets, window, state.now()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_fixed_length_macs_of_every_part() {
        let sealer = Sealer::from_secret(b"a throttle test secret").unwrap();
        let key = |kind: &str, parts: &[&str]| budget_key(&sealer, kind, parts);
        let long = "a".repeat(10_000);
        let k = key("signin-user", &[&long]);
        assert_eq!(k.len(), key("signin-user", &["a"]).len());
        assert!(!k.contains("aaaa"));
        // A name and its first 128 characters are different budgets.
        assert_ne!(k, key("signin-user", &[&long[..128]]));
        assert_ne!(key("client", &["ab", "c"]), key("client", &["a", "bc"]));
        // The same for every node holding the secret; unrelated to an unkeyed hash of the
        // address, and different under another secret.
        let again = Sealer::from_secret(b"a throttle test secret").unwrap();
        assert_eq!(
            key("signin-address", &["192.0.2.7"]),
            budget_key(&again, "signin-address", &["192.0.2.7"])
        );
        let other = Sealer::from_secret(b"another throttle test secret").unwrap();
        assert_ne!(
            key("signin-address", &["192.0.2.7"]),
            budget_key(&other, "signin-address", &["192.0.2.7"])
        );
        let unkeyed = tessera_core::secret::SecretHash::of("9:192.0.2.7");
        assert!(!key("signin-address", &["192.0.2.7"]).contains(unkeyed.as_str()));
    }
}
