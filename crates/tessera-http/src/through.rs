//! The dialect a request came through.
//!
//! Owns [`Through`]: the router puts one on every OAuth route ([`crate::router`]): the
//! dialect whose path it is, or, on Tessera's own paths, the dialect with
//! `standard_paths = true` if one is enabled, else none. Handlers take it as an extractor
//! and hand it to the core as [`tessera_core::cx::Cx::dialect`]. A request cannot choose it:
//! it is the path's (and, on the authorization pages' forms, the one sealed in the request in
//! progress, [`crate::pending`]).

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use tessera_core::dialect::Dialect;

/// The dialect a request came through, if any.
#[derive(Debug, Clone, Default)]
pub struct Through(pub Option<Arc<Dialect>>);

impl Through {
    /// The dialect, borrowed for a [`tessera_core::cx::Cx`].
    pub fn dialect(&self) -> Option<&Dialect> {
        self.0.as_deref()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Through {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Through>()
            .cloned()
            .unwrap_or_default())
    }
}
