//! Endpoints: one module per endpoint, each a `handle` function reading as named steps, and
//! [`ENDPOINTS`], the one table of Tessera's URLs.
//!
//! Each row of the table gives an endpoint's paths, the methods it takes, the metadata key
//! under which discovery names its URL (RFC 8414 §2, OpenID Connect Discovery §3), whether a
//! browser script of another origin may call it (CORS) and whether it is a page for people.
//! Discovery builds its URLs from the table, the HTTP router its routes (every path of every
//! row, with the row's methods and CORS), and the rules that name an endpoint's URL (the
//! audiences of assertions, say) read it here. Adding an endpoint is one module and one row
//! (and, in the HTTP layer, its handler for the row's id).
//!
//! A row may carry more than one path: the first is the one discovery names; the others
//! answer alike (as the two discovery documents do). A row may carry none: the endpoint is
//! then served only on the paths of the dialects that name it ([`crate::dialect`]), and the
//! router serves every dialect path with its row's methods and CORS flag. Discovery names
//! only the table's paths.
//!
//! The table holds no operational endpoints (health probes, metrics): they are the HTTP
//! layer's, on whichever listener it puts them.

pub mod authorize;
pub mod device_authorization;
pub mod device_verification;
pub mod discovery;
pub mod introspect;
pub mod par;
pub mod register;
pub mod revoke;
pub mod sdk_token;
pub mod token;
pub mod userinfo;

/// Which endpoint a row of [`ENDPOINTS`] is. The HTTP layer maps each to its handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndpointId {
    /// The token endpoint (RFC 6749 §3.2): [`token`].
    Token,
    /// Token introspection (RFC 7662): [`introspect`].
    Introspect,
    /// Token revocation (RFC 7009): [`revoke`].
    Revoke,
    /// The JSON exchange of a vendor-signed JWT for an access token: [`sdk_token`].
    SdkToken,
    /// Authorization server metadata (RFC 8414) and OpenID Provider metadata: [`discovery`].
    Discovery,
    /// The published signing keys (RFC 7517 §5).
    Jwks,
    /// The UserInfo endpoint (OpenID Connect Core §5.3): [`userinfo`].
    Userinfo,
    /// The authorization endpoint (RFC 6749 §3.1): [`authorize`]; a page.
    Authorize,
    /// RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0 §2); a page.
    Logout,
    /// The stylesheet of the pages.
    Stylesheet,
    /// Where an upstream OpenID provider sends the browser back after a sign-in there
    /// (OpenID Connect Core §3.1.2.5; [`crate::signin::upstream`]); a page.
    SsoCallback,
    /// The device authorization endpoint (RFC 8628 §3.1): [`device_authorization`].
    DeviceAuthorization,
    /// The device verification page (RFC 8628 §3.3), where the user enters the user code:
    /// [`device_verification`]; a page.
    DeviceVerification,
    /// Dynamic client registration (RFC 7591 §3) at its first path, and the management of
    /// one registration (RFC 7592) at that path followed by `/{client_id}`: [`register`].
    /// Served, and named by discovery, only when `dynamic_registration` is not off.
    Register,
    /// The pushed authorization request endpoint (RFC 9126 §2): [`par`].
    PushedAuthorization,
}

/// An HTTP method an endpoint takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// `GET` (RFC 9110 §9.3.1).
    Get,
    /// `POST` (RFC 9110 §9.3.3).
    Post,
}

impl Method {
    /// The method's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// One row of the endpoint table.
#[derive(Debug)]
pub struct Endpoint {
    /// Which endpoint it is.
    pub id: EndpointId,
    /// Its paths under the issuer; the first is the one discovery names. Never empty.
    pub paths: &'static [&'static str],
    /// The methods it takes; others get `405`.
    pub methods: &'static [Method],
    /// The metadata key naming its URL in discovery (`token_endpoint`, `jwks_uri`, ...), if
    /// discovery names it.
    pub metadata_key: Option<&'static str>,
    /// A browser script of another origin may call it: it answers CORS requests from the
    /// configured origins. Never a page.
    pub cors: bool,
    /// A page for people (HTML, forms, cookies): never CORS.
    pub page: bool,
}

impl Endpoint {
    /// The path discovery names: the first.
    pub fn path(&self) -> &'static str {
        self.paths.first().copied().unwrap_or_default()
    }
}

const POST: &[Method] = &[Method::Post];
const GET: &[Method] = &[Method::Get];
const GET_POST: &[Method] = &[Method::Get, Method::Post];

/// Every endpoint Tessera serves, in the order of their routes.
pub static ENDPOINTS: &[Endpoint] = &[
    Endpoint {
        id: EndpointId::Token,
        paths: &["/oauth2/token"],
        methods: POST,
        metadata_key: Some("token_endpoint"),
        cors: true,
        page: false,
    },
    Endpoint {
        id: EndpointId::DeviceAuthorization,
        paths: &["/oauth2/device_authorization"],
        methods: POST,
        metadata_key: Some("device_authorization_endpoint"),
        cors: false,
        page: false,
    },
    Endpoint {
        id: EndpointId::Introspect,
        paths: &["/oauth2/introspect"],
        methods: POST,
        metadata_key: Some("introspection_endpoint"),
        cors: true,
        page: false,
    },
    Endpoint {
        id: EndpointId::Revoke,
        paths: &["/oauth2/revoke"],
        methods: POST,
        metadata_key: Some("revocation_endpoint"),
        cors: true,
        page: false,
    },
    Endpoint {
        id: EndpointId::SdkToken,
        // Served only on the paths of the dialects that name it (the Anyflow dialect's
        // `/sdk/token`, on by default): [`crate::dialect`].
        paths: &[],
        methods: POST,
        metadata_key: None,
        cors: true,
        page: false,
    },
    Endpoint {
        id: EndpointId::Discovery,
        paths: &[
            "/.well-known/oauth-authorization-server",
            "/.well-known/openid-configuration",
        ],
        methods: GET,
        metadata_key: None,
        cors: true,
        page: false,
    },
    Endpoint {
        id: EndpointId::Jwks,
        paths: &["/.well-known/jwks.json"],
        methods: GET,
        metadata_key: Some("jwks_uri"),
        cors: true,
        page: false,
    },
    Endpoint {
        id: EndpointId::Userinfo,
        paths: &["/userinfo"],
        methods: GET_POST,
        metadata_key: Some("userinfo_endpoint"),
        cors: true,
        page: false,
    },
    Endpoint {
        id: EndpointId::Authorize,
        paths: &["/oauth2/authorize"],
        methods: GET_POST,
        metadata_key: Some("authorization_endpoint"),
        cors: false,
        page: true,
    },
    Endpoint {
        id: EndpointId::Logout,
        paths: &["/oauth2/logout"],
        methods: GET_POST,
        metadata_key: Some("end_session_endpoint"),
        cors: false,
        page: true,
    },
    Endpoint {
        id: EndpointId::DeviceVerification,
        paths: &[device_authorization::VERIFICATION_PATH],
        methods: GET_POST,
        metadata_key: None,
        cors: false,
        page: true,
    },
    Endpoint {
        id: EndpointId::Stylesheet,
        paths: &["/assets/tessera.css"],
        methods: GET,
        metadata_key: None,
        cors: false,
        page: true,
    },
    Endpoint {
        id: EndpointId::SsoCallback,
        paths: &["/oauth2/sso/callback"],
        methods: GET,
        metadata_key: None,
        cors: false,
        page: true,
    },
    Endpoint {
        id: EndpointId::Register,
        paths: &["/oauth2/register"],
        methods: POST,
        metadata_key: Some("registration_endpoint"),
        cors: false,
        page: false,
    },
    Endpoint {
        id: EndpointId::PushedAuthorization,
        paths: &["/oauth2/par"],
        methods: POST,
        metadata_key: Some("pushed_authorization_request_endpoint"),
        cors: false,
        page: false,
    },
];

/// The row of an endpoint.
pub fn find(id: EndpointId) -> Option<&'static Endpoint> {
    ENDPOINTS.iter().find(|e| e.id == id)
}

/// The path of an endpoint that discovery names (its first), or `""` were it missing from
/// the table (a unit test makes sure none is).
pub fn path(id: EndpointId) -> &'static str {
    find(id).map_or("", Endpoint::path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVERY_ID: &[EndpointId] = &[
        EndpointId::Token,
        EndpointId::Introspect,
        EndpointId::Revoke,
        EndpointId::DeviceAuthorization,
        EndpointId::DeviceVerification,
        EndpointId::SdkToken,
        EndpointId::Discovery,
        EndpointId::Jwks,
        EndpointId::Userinfo,
        EndpointId::Authorize,
        EndpointId::Logout,
        EndpointId::Stylesheet,
        EndpointId::SsoCallback,
        EndpointId::Register,
        EndpointId::PushedAuthorization,
    ];

    #[test]
    fn every_endpoint_has_exactly_one_row_with_at_least_one_path_and_method() {
        for id in EVERY_ID {
            let rows: Vec<_> = ENDPOINTS.iter().filter(|e| e.id == *id).collect();
            assert_eq!(rows.len(), 1, "{id:?}");
            assert!(!rows[0].methods.is_empty(), "{id:?}");
            if *id == EndpointId::SdkToken {
                // Only on dialect paths.
                assert!(rows[0].paths.is_empty());
                continue;
            }
            assert!(!rows[0].paths.is_empty(), "{id:?}");
            assert!(path(*id).starts_with('/'), "{id:?}");
        }
        assert_eq!(ENDPOINTS.len(), EVERY_ID.len());
    }

    #[test]
    fn paths_and_metadata_keys_are_unique_and_pages_are_never_cors() {
        let mut paths: Vec<&str> = ENDPOINTS
            .iter()
            .flat_map(|e| e.paths.iter().copied())
            .collect();
        let all = paths.len();
        paths.sort_unstable();
        paths.dedup();
        assert_eq!(paths.len(), all, "a path is in two rows");
        let mut keys: Vec<&str> = ENDPOINTS.iter().filter_map(|e| e.metadata_key).collect();
        let all = keys.len();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), all, "a metadata key names two endpoints");
        for e in ENDPOINTS {
            assert!(!(e.page && e.cors), "{:?} is a page with CORS", e.id);
            for p in e.paths {
                assert!(p.starts_with('/') && !p.ends_with('/'), "{p}");
            }
        }
    }

    #[test]
    fn the_first_path_is_the_named_one() {
        assert_eq!(path(EndpointId::Token), "/oauth2/token");
        assert_eq!(
            path(EndpointId::Discovery),
            "/.well-known/oauth-authorization-server"
        );
        assert_eq!(find(EndpointId::Discovery).map(|e| e.paths.len()), Some(2));
    }
}
