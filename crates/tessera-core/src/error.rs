//! The one protocol error of Tessera.
//!
//! Owns [`OAuthError`] and [`ErrorCode`]: every failure a client can see is one of these, built
//! where the failure happens with a description that is safe to send (no secrets, no
//! internals). Mapping to HTTP status and headers is the HTTP crate's job, not this module's.
//! Codes come from RFC 6749 §4.1.2.1 and §5.2, RFC 6750 §3.1, RFC 7009 §2.2.1 and OpenID
//! Connect Core §3.1.2.6.

use std::borrow::Cow;
use std::fmt;

/// An error code defined by an OAuth 2.0 or OpenID Connect specification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// "The request is missing a required parameter, includes an unsupported parameter value
    /// (other than grant type), repeats a parameter, includes multiple credentials, utilizes
    /// more than one mechanism for authenticating the client, or is otherwise malformed."
    InvalidRequest,
    /// "Client authentication failed (e.g., unknown client, no client authentication included,
    /// or unsupported authentication method)."
    InvalidClient,
    /// "The provided authorization grant ... or refresh token is invalid, expired, revoked ..."
    InvalidGrant,
    /// "The authenticated client is not authorized to use this authorization grant type."
    UnauthorizedClient,
    /// "The authorization grant type is not supported by the authorization server."
    UnsupportedGrantType,
    /// "The requested scope is invalid, unknown, malformed, or exceeds the scope granted."
    InvalidScope,
    /// "The resource owner or authorization server denied the request."
    AccessDenied,
    /// "The authorization server does not support obtaining an authorization code using this
    /// method."
    UnsupportedResponseType,
    /// "The authorization server encountered an unexpected condition."
    ServerError,
    /// "The authorization server is currently unable to handle the request due to a temporary
    /// overloading or maintenance of the server."
    TemporarilyUnavailable,
    /// RFC 6750 §3.1: "The access token provided is expired, revoked, malformed, or invalid."
    InvalidToken,
    /// RFC 6750 §3.1: "The request requires higher privileges than provided by the access
    /// token."
    InsufficientScope,
    /// RFC 7009 §2.2.1: "The authorization server does not support the revocation of the
    /// presented token type."
    UnsupportedTokenType,
    /// RFC 8707 §2: "The requested resource is invalid, missing, unknown, or malformed."
    InvalidTarget,
    /// Not an RFC code: the client sent too many failed attempts and must wait (HTTP 429).
    SlowDown,
    /// OpenID Connect Core §3.1.2.6: `prompt=none` and the user is not signed in.
    LoginRequired,
    /// OpenID Connect Core §3.1.2.6: `prompt=none` and the user has not consented.
    ConsentRequired,
    /// RFC 7591 §3.2.2: "The value of one or more redirection URIs is invalid."
    InvalidRedirectUri,
    /// RFC 7591 §3.2.2: "The value of one of the client metadata fields is invalid and the
    /// server has rejected this request."
    InvalidClientMetadata,
    /// RFC 7591 §3.2.2: "The software statement presented is not approved for use by this
    /// authorization server."
    UnapprovedSoftwareStatement,
    /// RFC 8628 §3.5: "The authorization request is still pending as the end user hasn't
    /// yet completed the user-interaction steps."
    AuthorizationPending,
    /// RFC 8628 §3.5: `slow_down` (HTTP 400): "the authorization request is still pending
    /// and polling should continue, but the interval MUST be increased by 5 seconds". Not
    /// the throttle's [`ErrorCode::SlowDown`] (HTTP 429).
    DevicePollSlowDown,
    /// RFC 8628 §3.5: "The "device_code" has expired, and the device authorization session
    /// has concluded."
    ExpiredToken,
    /// RFC 9101 §6.2 (used by RFC 9126 §4): "The `request_uri` in the authorization request
    /// returns an error or contains invalid data."
    InvalidRequestUri,
    /// RFC 9126 §2.3: a pushed request larger than the server takes, `invalid_request` with
    /// HTTP 413 ("if the request size was beyond the upper bound that the authorization
    /// server allows").
    PushTooLarge,
    /// RFC 9449 §7.1 and §5: "The DPoP proof is invalid" (a missing, malformed, wrongly
    /// signed, stale or replayed proof, or one for another request).
    InvalidDpopProof,
    /// RFC 9449 §8: the server requires a nonce it provides in the `DPoP-Nonce` header.
    UseDpopNonce,
}

impl ErrorCode {
    /// The wire string of the code.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::UnsupportedResponseType => "unsupported_response_type",
            ErrorCode::ServerError => "server_error",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::InsufficientScope => "insufficient_scope",
            ErrorCode::UnsupportedTokenType => "unsupported_token_type",
            ErrorCode::InvalidTarget => "invalid_target",
            ErrorCode::SlowDown => "slow_down",
            ErrorCode::LoginRequired => "login_required",
            ErrorCode::ConsentRequired => "consent_required",
            ErrorCode::InvalidRedirectUri => "invalid_redirect_uri",
            ErrorCode::InvalidClientMetadata => "invalid_client_metadata",
            ErrorCode::UnapprovedSoftwareStatement => "unapproved_software_statement",
            ErrorCode::AuthorizationPending => "authorization_pending",
            ErrorCode::DevicePollSlowDown => "slow_down",
            ErrorCode::ExpiredToken => "expired_token",
            ErrorCode::InvalidRequestUri => "invalid_request_uri",
            ErrorCode::PushTooLarge => "invalid_request",
            ErrorCode::InvalidDpopProof => "invalid_dpop_proof",
            ErrorCode::UseDpopNonce => "use_dpop_nonce",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A protocol error: an RFC code, a description safe to show the client, and an optional
/// internal cause that is logged and never sent.
#[derive(Debug)]
pub struct OAuthError {
    /// The RFC error code.
    pub code: ErrorCode,
    /// Human-readable text for the client; never contains secrets or internals.
    pub description: Cow<'static, str>,
    /// The internal cause, for logs only.
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.description)
    }
}

impl std::error::Error for OAuthError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// A fixed reason kept as an error's cause ([`OAuthError::because`]).
#[derive(Debug)]
struct Reason(&'static str);

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Reason {}

macro_rules! constructors {
    ($($name:ident => $code:ident),* $(,)?) => {
        $(
            #[doc = concat!("An `", stringify!($name), "` error with a description safe to show.")]
            pub fn $name(description: impl Into<Cow<'static, str>>) -> Self {
                Self::new(ErrorCode::$code, description)
            }
        )*
    };
}

impl OAuthError {
    /// An error with the given code and client-safe description.
    pub fn new(code: ErrorCode, description: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            description: description.into(),
            source: None,
        }
    }

    constructors! {
        invalid_request => InvalidRequest,
        invalid_client => InvalidClient,
        invalid_grant => InvalidGrant,
        unauthorized_client => UnauthorizedClient,
        unsupported_grant_type => UnsupportedGrantType,
        invalid_scope => InvalidScope,
        access_denied => AccessDenied,
        login_required => LoginRequired,
        consent_required => ConsentRequired,
        invalid_token => InvalidToken,
        unsupported_token_type => UnsupportedTokenType,
        invalid_target => InvalidTarget,
        slow_down => SlowDown,
        invalid_dpop_proof => InvalidDpopProof,
        use_dpop_nonce => UseDpopNonce,
    }

    /// This error with a cause for the logs only (never sent): the precise reason behind a
    /// refusal the client is told less about, such as an unknown client and a wrong secret,
    /// which both answer `client authentication failed` (RFC 6749 §5.2). A fixed text: it
    /// can never carry a value from the request.
    pub fn because(mut self, reason: &'static str) -> Self {
        self.source = Some(Box::new(Reason(reason)));
        self
    }

    /// What the logs say of this error: its cause when it has one, else its description.
    pub fn log_reason(&self) -> String {
        match &self.source {
            Some(s) => s.to_string(),
            None => self.description.to_string(),
        }
    }

    /// A `server_error` that keeps its cause for the logs; the client sees a fixed text.
    pub fn server_error(source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self {
            code: ErrorCode::ServerError,
            description: Cow::Borrowed("the server encountered an unexpected condition"),
            source: Some(Box::new(source)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_strings_are_the_rfc_ones() {
        let cases = [
            (ErrorCode::InvalidRequest, "invalid_request"),
            (ErrorCode::InvalidClient, "invalid_client"),
            (ErrorCode::InvalidGrant, "invalid_grant"),
            (ErrorCode::UnauthorizedClient, "unauthorized_client"),
            (ErrorCode::UnsupportedGrantType, "unsupported_grant_type"),
            (ErrorCode::InvalidScope, "invalid_scope"),
            (ErrorCode::ServerError, "server_error"),
            (ErrorCode::UnsupportedTokenType, "unsupported_token_type"),
            (ErrorCode::InvalidTarget, "invalid_target"),
        ];
        for (code, wire) in cases {
            assert_eq!(code.as_str(), wire);
        }
    }

    #[test]
    fn a_reason_reaches_the_logs_and_not_the_client() {
        let err =
            OAuthError::invalid_client("client authentication failed").because("wrong secret");
        assert_eq!(err.description, "client authentication failed");
        assert_eq!(err.log_reason(), "wrong secret");
        let plain = OAuthError::invalid_client("client authentication is required");
        assert_eq!(plain.log_reason(), "client authentication is required");
    }

    #[test]
    fn server_error_hides_its_cause() {
        let err = OAuthError::server_error(std::io::Error::other("disk at /secret/path"));
        assert!(!err.description.contains("/secret/path"));
        assert!(std::error::Error::source(&err).is_some());
    }
}
