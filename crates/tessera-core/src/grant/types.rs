//! The grant type names Tessera knows (RFC 6749 §4; an absolute URI for extension grants,
//! §4.5). A leaf: the grant modules, client registration and stored client records name
//! grant types with these.

/// RFC 6749 §4.4.
pub const CLIENT_CREDENTIALS: &str = "client_credentials";
/// RFC 6749 §4.1.
pub const AUTHORIZATION_CODE: &str = "authorization_code";
/// RFC 6749 §6.
pub const REFRESH_TOKEN: &str = "refresh_token";
/// RFC 7523 §2.1.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// RFC 8628 §3.4.
pub const DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// RFC 6749 §4.3: never offered (RFC 9700 §2.4).
pub const PASSWORD: &str = "password";
/// RFC 8693 §2.1.
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
