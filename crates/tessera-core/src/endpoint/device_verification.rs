//! The device verification page's rules (RFC 8628 §3.3): what a typed user code stands for,
//! and the user's decision on it.
//!
//! Owns [`find`] and [`decide`]. A user code is compared case-insensitively with dashes and
//! white space ignored ([`normalise_user_code`], §6.1); it names a device authorization the
//! user may decide on only while it is pending and unexpired ([`Found::Pending`]); an
//! unknown code, an expired one and one already decided are told apart so the page can say
//! which, and only the unknown one counts as a guess (the page's throttle, §5.1, is the HTTP
//! layer's). The decision is recorded once ([`crate::store::DeviceStore::decide_device_code`]):
//! approved with the user, the scope asked for and the sign-in time, which the device's
//! next poll turns into tokens ([`crate::grant::device_code`]), or denied, which the poll
//! answers `access_denied` (§3.5). Signing in and the session are [`crate::session`]'s; the
//! page always asks for consent, showing the client and the scope, so the user can check
//! that the code is the one on their own device (§5.4, remote phishing).

use crate::cx::Cx;
use crate::error::OAuthError;
use crate::grant::device_code::{display_user_code, normalise_user_code};
use crate::model::{ClientRecord, DeviceApproval, DeviceCodeRecord, DeviceStatus, UserRecord};

/// What a typed user code stands for.
#[derive(Debug)]
pub enum Found {
    /// A pending device authorization the user may approve or deny, and its client.
    Pending(Box<(DeviceCodeRecord, ClientRecord)>),
    /// No device authorization has this code (or the client is gone): a wrong guess.
    Unknown,
    /// The code has expired.
    Expired,
    /// The code was already approved, denied or used.
    Decided,
}

/// The device authorization a typed user code names, at `cx.now`.
pub async fn find(cx: &Cx<'_>, typed: &str) -> Result<Found, OAuthError> {
    let Some(code) = normalise_user_code(typed) else {
        return Ok(Found::Unknown);
    };
    let Some(record) = cx.store.find_device_user_code(&code).await? else {
        return Ok(Found::Unknown);
    };
    if record.expires_at <= cx.now {
        return Ok(Found::Expired);
    }
    if record.status != DeviceStatus::Pending {
        return Ok(Found::Decided);
    }
    match cx.store.get_client(&record.client_id).await? {
        Some(client) => Ok(Found::Pending(Box::new((record, client)))),
        None => Ok(Found::Unknown),
    }
}

/// The user code as people read it (`WDJB-MJHT`).
pub fn shown(record: &DeviceCodeRecord) -> String {
    display_user_code(&record.user_code)
}

/// Records `user`'s decision (`allow`) on the pending device authorization `record`, the
/// user having signed in at `auth_time`. Returns whether it was recorded: `false` when the
/// authorization was decided meanwhile (by another tab, or expired).
pub async fn decide(
    cx: &Cx<'_>,
    record: &DeviceCodeRecord,
    user: &UserRecord,
    auth_time: i64,
    allow: bool,
) -> Result<bool, OAuthError> {
    let approval = DeviceApproval {
        user_id: user.user_id.clone(),
        scope: record.scope.clone(),
        auth_time,
    };
    let decided = cx
        .store
        .decide_device_code(&record.user_code, allow.then_some(&approval), cx.now)
        .await?;
    Ok(decided)
}
