//! The device authorization endpoint (RFC 8628 §3.1, §3.2).
//!
//! Owns the device authorization request: the client authenticates as at the token endpoint
//! (a public client names itself with `client_id`, §3.1) and must be registered for the
//! device grant ([`crate::grant::device_code`]); the `scope` must be within its registration
//! (`invalid_scope` otherwise). The answer (§3.2) is a `device_code` of 256 random bits,
//! stored only as its hash, a `user_code` from the alphabet of §6.1 shown grouped
//! (`WDJB-MJHT`), the `verification_uri` (the `/device` page), `verification_uri_complete`
//! (the same with the user code, for a QR code, §3.3.1), `expires_in` and `interval`.

use crate::client_auth::{self, BasicCredentials};
use crate::cx::Cx;
use crate::error::OAuthError;
use crate::grant::device_code::{display_user_code, generate_user_code, GRANT_TYPE};
use crate::model::{DeviceCodeRecord, DeviceStatus};
use crate::params::Params;
use crate::scope::ScopeSet;
use crate::secret::{generate, Secret};
use crate::store::StoreError;

/// The path of the page where the user enters the user code (RFC 8628 §3.3).
pub const VERIFICATION_PATH: &str = "/device";
/// Seconds a device code and its user code live (RFC 8628 §3.2 `expires_in`).
pub const DEVICE_CODE_TTL: i64 = 600;
/// The minimum seconds between polls a client is first given (RFC 8628 §3.2: 5 by default).
pub const INTERVAL: i64 = 5;
/// Prefix of device codes, telling them apart in logs and leaks.
pub const DEVICE_CODE_PREFIX: &str = "tsd_";
/// Attempts at a fresh user code before giving up (a clash is one in 20^8 per stored code).
const USER_CODE_TRIES: usize = 5;

/// A device authorization response (RFC 8628 §3.2).
#[derive(Debug)]
pub struct DeviceAuthorization {
    /// The device verification code, for the token endpoint.
    pub device_code: Secret,
    /// The end-user verification code, as shown (`WDJB-MJHT`).
    pub user_code: String,
    /// The page where the user enters the code.
    pub verification_uri: String,
    /// The page with the code already in it.
    pub verification_uri_complete: String,
    /// Seconds both codes live.
    pub expires_in: i64,
    /// The minimum seconds between polls.
    pub interval: i64,
}

/// Handles a device authorization request.
pub async fn handle(
    cx: &Cx<'_>,
    basic: Option<&BasicCredentials>,
    params: &Params,
) -> Result<DeviceAuthorization, OAuthError> {
    params.reject_duplicates()?;
    let (client, method) = client_auth::authenticate(cx, basic, params).await?;
    crate::profile::check_client_auth(&client, method, params, &cx.config.issuer)?;
    if !client.allows_grant(GRANT_TYPE) {
        return Err(OAuthError::unauthorized_client(
            "this client may not use the device authorization grant",
        ));
    }
    let scope = match params.get("scope")? {
        None => client.scopes.clone(),
        Some(s) => {
            let asked = ScopeSet::parse(s)?;
            asked.check_within(&client.scopes)?;
            asked
        }
    };
    let device_code = generate(DEVICE_CODE_PREFIX);
    let mut tries = 0;
    let user_code = loop {
        let user_code = generate_user_code();
        let rec = DeviceCodeRecord {
            device_code_hash: device_code.hash(),
            user_code: user_code.clone(),
            client_id: client.client_id.clone(),
            scope: scope.to_string(),
            issued_at: cx.now,
            expires_at: cx.now.saturating_add(DEVICE_CODE_TTL),
            interval: INTERVAL,
            last_poll_at: None,
            status: DeviceStatus::Pending,
            user_id: None,
            auth_time: None,
        };
        match cx.store.insert_device_code(&rec).await {
            Ok(()) => break user_code,
            Err(StoreError::Conflict) if tries + 1 < USER_CODE_TRIES => tries += 1,
            Err(e) => return Err(e.into()),
        }
    };
    let shown = display_user_code(&user_code);
    let verification_uri = cx.config.endpoint(VERIFICATION_PATH);
    Ok(DeviceAuthorization {
        device_code,
        verification_uri_complete: format!("{verification_uri}?user_code={shown}"),
        verification_uri,
        user_code: shown,
        expires_in: DEVICE_CODE_TTL,
        interval: INTERVAL,
    })
}
