//! Grants at the token endpoint.
//!
//! Owns [`TokenResponse`] (RFC 6749 §5.1), one module per grant type, and [`GRANTS`], the one
//! table of grant types: the token endpoint dispatches through it, and discovery, metrics
//! labels and client registration read it. Adding a grant type is one new module here and
//! one row in [`GRANTS`].

pub mod authorization_code;
pub mod client_credentials;
pub mod device_code;
pub mod jwt_bearer;
pub mod refresh_token;
pub mod token_exchange;
pub mod types;
mod user_tokens;

use std::future::Future;
use std::pin::Pin;

use crate::cx::Cx;
use crate::error::OAuthError;
use crate::model::ClientRecord;
use crate::params::Params;
use crate::secret::Secret;

/// What a grant's handler returns: a future, boxed so that the table can hold handlers of
/// every grant side by side.
pub type GrantFuture<'a> =
    Pin<Box<dyn Future<Output = Result<TokenResponse, OAuthError>> + Send + 'a>>;

/// Handles a token request of one grant type for a client already authenticated.
pub type GrantHandler = for<'a, 'b> fn(&'a Cx<'b>, &'a ClientRecord, &'a Params) -> GrantFuture<'a>;

/// One row of the grant table.
pub struct Grant {
    /// The `grant_type` value (RFC 6749 §4; an absolute URI for extension grants, §4.5).
    pub grant_type: &'static str,
    /// A short name for metrics labels and logs.
    pub label: &'static str,
    /// The handler the token endpoint dispatches to.
    pub handle: GrantHandler,
    /// A client registered for it must register redirect URIs (the grant starts at the
    /// authorization endpoint, RFC 6749 §3.1.2).
    pub needs_redirect_uri: bool,
    /// Public clients (RFC 6749 §2.1) may be registered for it.
    pub public_clients: bool,
    /// The tokens it issues act for a user (refresh tokens and ID tokens may follow).
    pub acts_for_user: bool,
}

/// Every grant type Tessera offers at the token endpoint, in the order discovery lists them.
pub static GRANTS: &[Grant] = &[
    client_credentials::GRANT,
    authorization_code::GRANT,
    refresh_token::GRANT,
    jwt_bearer::GRANT,
    token_exchange::GRANT,
    device_code::GRANT,
];

/// The row of a grant type, if Tessera offers it.
pub fn find(grant_type: &str) -> Option<&'static Grant> {
    GRANTS.iter().find(|g| g.grant_type == grant_type)
}

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug)]
pub struct TokenResponse {
    /// The access token.
    pub access_token: Secret,
    /// Token type: Tessera issues bearer tokens (RFC 6750), labelled `bearer` unless the
    /// request came through a dialect with a label of its own ([`crate::dialect`]).
    pub token_type: String,
    /// Lifetime of the access token, seconds.
    pub expires_in: i64,
    /// Granted scope (RFC 6749 §5.1: included as it may differ from the request).
    pub scope: String,
    /// A refresh token (RFC 6749 §6), for grants that act for a user.
    pub refresh_token: Option<Secret>,
    /// An OpenID Connect ID token, when the scope includes `openid`.
    pub id_token: Option<String>,
    /// The user the tokens act for (the one who authorized), for grants that act for a
    /// user; not part of the response unless a dialect names it ([`Self::wid`]).
    pub user: Option<String>,
    /// `wid`: the stable id of the user who authorized, for a dialect whose responses carry
    /// it ([`crate::dialect::ResponseField::Wid`]).
    pub wid: Option<String>,
    /// `issued_token_type`: the type of the token issued by a token exchange (RFC 8693
    /// §2.2.1).
    pub issued_token_type: Option<String>,
}

impl TokenResponse {
    /// A response with an access token only.
    pub fn access_only(token: crate::issue::IssuedToken) -> Self {
        Self {
            access_token: token.access_token,
            token_type: "bearer".to_owned(),
            expires_in: token.expires_in,
            scope: token.scope.to_string(),
            refresh_token: None,
            id_token: None,
            user: None,
            wid: None,
            issued_token_type: None,
        }
    }

    /// Shapes the response as the dialect the request came through says: its `token_type`
    /// label and its extra fields.
    pub fn through(mut self, dialect: Option<&crate::dialect::Dialect>) -> Self {
        if let Some(d) = dialect {
            self.token_type.clone_from(&d.token_type);
            if d.has_field(crate::dialect::ResponseField::Wid) {
                self.wid.clone_from(&self.user);
            }
        }
        self
    }
}
