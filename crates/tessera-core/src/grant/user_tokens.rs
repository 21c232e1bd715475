//! The token response of the grants that act for a user (authorization code, refresh token).
//!
//! Owns [`respond`]: an access token bound to the user's grant, the ID token when the scope
//! includes `openid`, and the refresh token the grant module decided on; and, for the grants
//! that make a new user grant (authorization code, device code), whether it gets a refresh
//! token ([`wants_refresh`]) and its first one ([`first_refresh`]).

use crate::cx::Cx;
use crate::error::OAuthError;
use crate::grant::TokenResponse;
use crate::id_token::{self, IdTokenFor};
use crate::issue::{issue_access_token_with, Extras, UserGrant};
use crate::model::{ClientRecord, GrantRecord, RefreshPolicy, RefreshRecord};
use crate::opaque;
use crate::resource::Audience;
use crate::scope::ScopeSet;
use crate::secret::Secret;

/// Whether a new grant gets a refresh token: the policy says so (`offline_access` asked, for
/// that policy), and its absolute end, `refresh_end`, is still ahead.
pub(crate) fn wants_refresh(
    policy: RefreshPolicy,
    granted: &ScopeSet,
    refresh_end: i64,
    now: i64,
) -> bool {
    let by_policy = match policy {
        RefreshPolicy::Always => true,
        RefreshPolicy::OfflineAccess => granted.contains("offline_access"),
        RefreshPolicy::Never => false,
    };
    by_policy && refresh_end > now
}

/// The first refresh token of a new grant: it ends at the grant's `refresh_end`, or sooner
/// when the client has an idle lifetime (each rotation then moves it on). The value for the
/// client and the record to store (its hash only).
pub(crate) fn first_refresh(
    cx: &Cx<'_>,
    client: &ClientRecord,
    grant: &GrantRecord,
    refresh_end: i64,
) -> (Secret, RefreshRecord) {
    let idle = client.user_flow.refresh_token_idle_ttl;
    let exp = if idle > 0 {
        refresh_end.min(cx.now.saturating_add(idle))
    } else {
        refresh_end
    };
    let (value, token_id) = opaque::mint_refresh(exp);
    let rec = RefreshRecord {
        token_id,
        token_hash: value.hash(),
        grant_id: grant.grant_id.clone(),
        client_id: client.client_id.clone(),
        scope: grant.scope.clone(),
        issued_at: cx.now,
        expires_at: exp,
        used_at: None,
        successor_sealed: None,
    };
    (value, rec)
}

/// What the code of a grant adds to the tokens of an exchange.
#[derive(Debug, Default)]
pub(crate) struct FromCode<'a> {
    /// The OpenID Connect `nonce` of the authorization request, for the ID token.
    pub nonce: Option<&'a str>,
    /// Authorization-request parameters the code's dialect carries, as claims (registered
    /// claims are dropped by [`crate::issue`]).
    pub carried: serde_json::Map<String, serde_json::Value>,
}

impl FromCode<'_> {
    /// What a refresh under `grant` adds: the claims its code carried, no `nonce`.
    pub fn refresh(grant: &GrantRecord) -> Self {
        let carried = grant
            .claims
            .as_deref()
            .and_then(|c| serde_json::from_str(c).ok())
            .unwrap_or_default();
        Self {
            nonce: None,
            carried,
        }
    }
}

/// Issues the tokens of one exchange under `grant`.
pub(crate) async fn respond(
    cx: &Cx<'_>,
    client: &ClientRecord,
    grant: &GrantRecord,
    scope: &ScopeSet,
    audience: Audience,
    refresh_token: Option<Secret>,
    from_code: FromCode<'_>,
) -> Result<TokenResponse, OAuthError> {
    let FromCode { nonce, carried } = from_code;
    // The user must still exist: deleting a user revokes their grants, but say so plainly.
    let user = cx
        .store
        .get_user(&grant.user_id)
        .await?
        .ok_or_else(|| OAuthError::invalid_grant("the user of this grant no longer exists"))?;
    let access = issue_access_token_with(
        cx,
        client,
        &grant.user_id,
        scope,
        audience,
        Extras {
            grant: Some(UserGrant {
                grant_id: &grant.grant_id,
                auth_time: grant.auth_time,
            }),
            claims: carried,
            ..Extras::default()
        },
    )
    .await?;
    let id_token = if scope.contains("openid") {
        Some(id_token::issue(
            cx,
            &IdTokenFor {
                user: &user,
                client_id: &client.client_id,
                nonce,
                auth_time: grant.auth_time,
                scope,
                access_token: access.access_token.expose(),
                sid: grant.sid.as_deref(),
            },
        )?)
    } else {
        None
    };
    let mut response = TokenResponse::access_only(access);
    response.refresh_token = refresh_token;
    response.id_token = id_token;
    response.user = Some(grant.user_id.clone());
    Ok(response)
}

/// The scope of this exchange: what the request narrows to (RFC 6749 §6: never more than
/// what was granted), or everything granted.
pub(crate) fn narrowed_scope(
    asked: Option<&str>,
    granted: &ScopeSet,
) -> Result<ScopeSet, OAuthError> {
    match asked {
        None => Ok(granted.clone()),
        Some(s) => {
            let asked = ScopeSet::parse(s)?;
            asked.check_within(granted)?;
            Ok(asked)
        }
    }
}
