//! Tokens, as an operator sees them: by their value, whoever they were issued to (for
//! incident response and debugging).
//!
//! Owns no rule of its own: a look is [`crate::inspect::look`] (which never consumes a
//! single-use token), and revoking one is the revocation endpoint's rule
//! ([`crate::endpoint::revoke::revoke_value`], RFC 7009) without the check that the caller
//! owns the token: a JWT access token is revoked by its `jti` until it expires, an opaque one
//! is marked revoked, and a refresh token revokes its whole grant, the access tokens issued
//! under it included. Every token of a client is revoked with
//! [`super::clients::revoke_tokens`]; every token of a user with
//! [`super::grants::revoke_tokens`] (the user stays), and every token a user's consent to one
//! client let it obtain with [`super::grants::revoke_consent`].

use super::{AdminError, AdminResult};
use crate::cx::Cx;
use crate::endpoint::revoke::revoke_value;
use crate::error::OAuthError;
use crate::inspect::{look, ActiveToken};

fn internal(e: OAuthError) -> AdminError {
    AdminError::Internal(e.to_string())
}

/// Whether `token` is an active access token, and what it says; a single-use token is not
/// consumed by this look.
pub async fn inspect(cx: &Cx<'_>, token: &str) -> AdminResult<Option<ActiveToken>> {
    look(cx, token, None).await.map_err(internal)
}

/// Revokes an access or refresh token by its value; returns whether it was active (or, for
/// a refresh token, whether its grant still stood) and is now revoked.
pub async fn revoke(cx: &Cx<'_>, token: &str) -> AdminResult<bool> {
    revoke_value(cx, token, None).await.map_err(internal)
}
