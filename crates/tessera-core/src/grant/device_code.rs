//! The device authorization grant at the token endpoint (RFC 8628 §3.4, §3.5), and the user
//! code's form (§6.1).
//!
//! Owns the poll: the client (authenticated, or a public client naming itself) sends the
//! device code it got from the device authorization endpoint
//! ([`crate::endpoint::device_authorization`]); the answer is `authorization_pending` while the
//! user has not decided, `slow_down` (HTTP 400, the interval raised by
//! [`SLOW_DOWN_STEP`] seconds for that device code) when the client polls sooner than the
//! interval, `access_denied` when the user refused, `expired_token` once the code expired, and
//! the tokens, once, when the user approved. A device code already exchanged, unknown, or
//! another client's is `invalid_grant`. The store decides each poll in one atomic step
//! ([`crate::store::DeviceStore::poll_device_code`]), so concurrent polls get the tokens once.
//!
//! Also owns the user code (§6.1): [`USER_CODE_LEN`] characters from an alphabet of consonants
//! without look-alikes ([`USER_CODE_ALPHABET`]), shown in two groups (`WDJB-MJHT`), compared
//! case-insensitively with dashes and spaces ignored ([`normalise_user_code`]).

use crate::cx::Cx;
use crate::error::{ErrorCode, OAuthError};
use crate::grant::types;
use crate::grant::user_tokens::{first_refresh, narrowed_scope, respond, wants_refresh, FromCode};
use crate::grant::TokenResponse;
use crate::model::{ClientRecord, DevicePoll, GrantRecord};
use crate::params::Params;
use crate::resource;
use crate::scope::ScopeSet;
use crate::secret::{generate_id, random_bytes, SecretHash};

/// The grant type this module handles.
pub const GRANT_TYPE: &str = types::DEVICE_CODE;

/// This grant's row in [`crate::grant::GRANTS`].
pub const GRANT: crate::grant::Grant = crate::grant::Grant {
    grant_type: GRANT_TYPE,
    label: "device_code",
    handle: |cx, client, params| Box::pin(handle(cx, client, params)),
    needs_redirect_uri: false,
    public_clients: true,
    acts_for_user: true,
};

/// RFC 8628 §6.1: "BCDFGHJKLMNPQRSTVWXZ", base-20 without vowels (no words) or look-alikes.
pub const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
/// Characters in a user code: 20^8 (about 2^34.6) codes.
pub const USER_CODE_LEN: usize = 8;
/// Seconds added to a device code's interval by each `slow_down` (RFC 8628 §3.5).
pub const SLOW_DOWN_STEP: i64 = 5;

/// A new random user code, normalised (no dash).
pub fn generate_user_code() -> String {
    let mut code = String::with_capacity(USER_CODE_LEN);
    while code.len() < USER_CODE_LEN {
        for b in random_bytes::<16>() {
            // Rejection sampling: 240 = 12 × 20, so the accepted bytes are uniform mod 20.
            if b < 240 && code.len() < USER_CODE_LEN {
                let i = usize::from(b % 20);
                if let Some(c) = USER_CODE_ALPHABET.get(i) {
                    code.push(char::from(*c));
                }
            }
        }
    }
    code
}

/// A user code as typed, normalised: upper case, dashes and white space dropped. `None` if
/// what is left is not [`USER_CODE_LEN`] characters of the alphabet (it matches no code).
pub fn normalise_user_code(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| *c != '-' && !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let valid =
        code.len() == USER_CODE_LEN && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b));
    valid.then_some(code)
}

/// A normalised user code as shown to people: two groups of four, `WDJB-MJHT`.
pub fn display_user_code(code: &str) -> String {
    match (code.get(..4), code.get(4..)) {
        (Some(a), Some(b)) if !b.is_empty() => format!("{a}-{b}"),
        _ => code.to_owned(),
    }
}

/// Polls with a device code (RFC 8628 §3.4).
pub async fn handle(
    cx: &Cx<'_>,
    client: &ClientRecord,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    if !client.allows_grant(GRANT_TYPE) {
        return Err(OAuthError::unauthorized_client(
            "this client may not use the device authorization grant",
        ));
    }
    let device_code = params.require("device_code")?;
    let asked_scope = params.get("scope")?;
    let hash = SecretHash::of(device_code);
    let rec = match cx
        .store
        .poll_device_code(&hash, &client.client_id, cx.now, SLOW_DOWN_STEP)
        .await?
    {
        DevicePoll::Unknown | DevicePoll::Used => {
            return Err(OAuthError::invalid_grant(
                "the device code is invalid or was already used",
            ))
        }
        DevicePoll::Expired => {
            return Err(OAuthError::new(
                ErrorCode::ExpiredToken,
                "the device code has expired",
            ))
        }
        DevicePoll::SlowDown { .. } => {
            return Err(OAuthError::new(
                ErrorCode::DevicePollSlowDown,
                "polling too fast: wait 5 seconds more between polls",
            ))
        }
        DevicePoll::Pending => {
            return Err(OAuthError::new(
                ErrorCode::AuthorizationPending,
                "the user has not decided yet",
            ))
        }
        DevicePoll::Denied => {
            return Err(OAuthError::access_denied(
                "the user denied the authorization",
            ))
        }
        DevicePoll::Issued(rec) => rec,
    };
    let (Some(user_id), Some(auth_time)) = (rec.user_id.clone(), rec.auth_time) else {
        return Err(OAuthError::invalid_grant("the device code is invalid"));
    };
    let granted = ScopeSet::parse(&rec.scope)?;
    let scope = narrowed_scope(asked_scope, &granted)?;
    let audience = resource::resolve(params, client, cx.config)?;
    let flow = &client.user_flow;
    let refresh_end = auth_time.saturating_add(flow.refresh_token_ttl);
    let wants_refresh = wants_refresh(flow.refresh_tokens, &granted, refresh_end, cx.now);
    let kept_until = if wants_refresh { refresh_end } else { cx.now };
    let grant = GrantRecord {
        grant_id: generate_id(),
        client_id: client.client_id.clone(),
        user_id,
        scope: granted.to_string(),
        auth_time,
        nonce: None,
        token_epoch: client.token_epoch,
        created_at: cx.now,
        refresh_expires_at: kept_until,
        expires_at: kept_until.saturating_add(cx.config.max_access_token_ttl),
        revoked_at: None,
        claims: None,
        // The device is not signed in through the browser session that approved it: signing
        // out of that browser leaves the device's grant alone (an operator ending the user's
        // grants still reaches it, and its client's back-channel logout with it).
        sid: None,
        dpop_jkt: crate::sender::refresh_binding(cx, client),
    };
    let refresh = wants_refresh.then(|| first_refresh(cx, client, &grant, refresh_end));
    cx.store
        .insert_grant(&grant, refresh.as_ref().map(|(_, r)| r))
        .await?;
    respond(
        cx,
        client,
        &grant,
        &scope,
        audience,
        refresh.map(|(v, _)| v),
        FromCode::default(),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_are_from_the_alphabet_and_normalise_to_themselves() {
        for _ in 0..200 {
            let code = generate_user_code();
            assert_eq!(code.len(), USER_CODE_LEN);
            assert_eq!(normalise_user_code(&code).as_deref(), Some(code.as_str()));
            let shown = display_user_code(&code);
            assert_eq!(shown.len(), USER_CODE_LEN + 1);
            assert_eq!(normalise_user_code(&shown.to_lowercase()), Some(code));
        }
    }

    #[test]
    fn typed_codes_ignore_case_dashes_and_spaces_and_refuse_the_rest() {
        assert_eq!(
            normalise_user_code("wdjb-mjht").as_deref(),
            Some("WDJBMJHT")
        );
        assert_eq!(
            normalise_user_code(" WDJB MJHT ").as_deref(),
            Some("WDJBMJHT")
        );
        assert_eq!(display_user_code("WDJBMJHT"), "WDJB-MJHT");
        // Vowels and digits are not in the alphabet; nor is a short or long code.
        assert_eq!(normalise_user_code("WDJB-MJHA"), None);
        assert_eq!(normalise_user_code("WDJB-MJH1"), None);
        assert_eq!(normalise_user_code("WDJB-MJH"), None);
        assert_eq!(normalise_user_code("WDJB-MJHTT"), None);
        assert_eq!(normalise_user_code("ＷDJB-MJHT"), None);
    }
}
