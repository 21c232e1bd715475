//! Dynamic client registration (RFC 7591) and its management (RFC 7592).
//!
//! Owns the registration endpoint's rules: reading the client metadata (RFC 7591 §2),
//! checking it exactly as an operator's registration is checked (it becomes a
//! [`ClientSpec`] and goes through [`clients::create`]: redirect URI rules, the
//! grant table's requirements, the authentication method), the consistency of
//! `grant_types` and `response_types` (RFC 7591 §2.1), the registration response
//! (RFC 7591 §3.2.1, RFC 7592 §3) and reading, replacing and deleting a registration with its
//! registration access token (RFC 7592 §2), which is stored only as its hash.
//!
//! Registration by token (`dynamic_registration = "token"`) requires an initial access token
//! (RFC 7591 §3): an admin token ([`crate::admin::admin_tokens`]) an operator issued with the
//! scope [`REGISTER_SCOPE`], presented as `Authorization: Bearer` (RFC 6750 §2.1). Its
//! checks are those of the admin API (stored hashed, compared in constant time, refused once
//! revoked or expired); a missing or refused token is `invalid_token` (401), a token without
//! the scope `insufficient_scope` (403, RFC 6750 §3.1). The operator vouches for whoever holds
//! it, so the registrant may ask for any grant type an operator could register. The token
//! is not tied to the clients it registered: each is then managed with its own registration
//! access token.
//!
//! Open registration (`dynamic_registration = "open"`) lets anyone register, so it gives a
//! registrant nothing an operator or a user has not approved (RFC 7591 §5): only
//! `authorization_code` and `refresh_token` (every token then carries a user's consent), no
//! `client_credentials` (its tokens would carry whatever scope the registrant chose, with
//! no user or operator approving it) and no `jwt-bearer` (its assertions are trusted per
//! environment by the operator). A registered client is never first-party (users are asked
//! for consent), gets the default environment and audience, and cannot send a
//! `software_statement` (none is trusted: `unapproved_software_statement`) or a `jwks_uri`
//! (Tessera fetches no client keys; `jwks` is taken).
//!
//! Each registration, RFC 7592 change and deletion, and each refused initial access token,
//! is recorded in the audit trail ([`crate::audit`]): the registrant is the admin token that
//! vouched for it (or `anonymous` in open mode), a change is the client's own.

use serde_json::{Map, Value};

use crate::admin::clients::{self, AuthMethod, ClientSettings, ClientSpec};
use crate::admin::public_keys::{KeyDocument, PublicKeys};
use crate::admin::{admin_tokens, AdminError};
use crate::audit::{self, Actor, AuditEvent, AuditKind};
use crate::cx::Cx;
use crate::error::{ErrorCode, OAuthError};
use crate::grant::types as grant_types;
use crate::model::ClientRecord;
use crate::secret::{self, Secret, SecretHash};

/// Prefix of registration access tokens (recognisable by secret scanners).
pub const TOKEN_PREFIX: &str = "trat_";

/// The admin-token scope that makes an admin token an initial access token (RFC 7591 §3).
pub const REGISTER_SCOPE: &str = crate::admin::admin_tokens::REGISTER_SCOPE;

/// The grant types open registration may ask for.
pub const OPEN_GRANT_TYPES: &[&str] =
    &[grant_types::AUTHORIZATION_CODE, grant_types::REFRESH_TOKEN];

/// Metadata Tessera reads but does not keep; each must still be well-formed (a string, or
/// for `contacts` an array of strings). Other unknown fields are ignored (RFC 7591 §2).
const IGNORED_STRINGS: &[&str] = &[
    "client_uri",
    "logo_uri",
    "tos_uri",
    "policy_uri",
    "software_id",
    "software_version",
];

/// A client just registered: its record, its secret and its registration access token,
/// both shown this once.
#[derive(Debug)]
pub struct Registered {
    /// The stored client.
    pub client: ClientRecord,
    /// Its secret, for a client that authenticates with one.
    pub secret: Option<Secret>,
    /// The registration access token (RFC 7592 §3).
    pub registration_access_token: Secret,
}

/// `invalid_client_metadata` (RFC 7591 §3.2.2).
fn invalid_metadata(description: impl Into<std::borrow::Cow<'static, str>>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidClientMetadata, description)
}

/// An [`AdminError`] as the registration endpoint answers it.
fn from_admin(e: AdminError) -> OAuthError {
    match e {
        AdminError::Invalid {
            field: "redirect_uris",
            reason,
        } => OAuthError::new(ErrorCode::InvalidRedirectUri, reason),
        AdminError::Invalid { reason, .. } => invalid_metadata(reason),
        AdminError::Conflict(reason) => invalid_metadata(reason),
        AdminError::NotFound { .. } => OAuthError::invalid_token("no such registration"),
        AdminError::Store(s) => s.into(),
        e => OAuthError::server_error(e),
    }
}

/// Reads the metadata of a registration request or a registration update.
fn read_metadata(body: &[u8], open: bool) -> Result<(ClientSpec, Map<String, Value>), OAuthError> {
    let doc: Value = serde_json::from_slice(body)
        .map_err(|_| invalid_metadata("the request body must be a JSON object (RFC 7591 §3.1)"))?;
    let Value::Object(doc) = doc else {
        return Err(invalid_metadata(
            "the request body must be a JSON object (RFC 7591 §3.1)",
        ));
    };
    if doc.contains_key("software_statement") {
        return Err(OAuthError::new(
            ErrorCode::UnapprovedSoftwareStatement,
            "no software statement is approved by this server (RFC 7591 §2.3)",
        ));
    }
    if doc.contains_key("jwks_uri") {
        return Err(invalid_metadata(
            "jwks_uri is not supported: register the public keys as jwks (RFC 7591 §2)",
        ));
    }
    for f in IGNORED_STRINGS {
        if doc.get(*f).is_some_and(|v| !v.is_string()) {
            return Err(invalid_metadata(format!("{f} must be a string")));
        }
    }
    let _contacts = strings(&doc, "contacts")?;
    let redirect_uris = strings(&doc, "redirect_uris")?;
    let method = match doc.get("token_endpoint_auth_method") {
        None => AuthMethod::ClientSecretBasic,
        Some(Value::String(m)) => AuthMethod::parse(m).ok_or_else(|| {
            invalid_metadata(format!(
                "token_endpoint_auth_method '{m}' is not supported (client_secret_basic, \
                 client_secret_post, private_key_jwt or none)"
            ))
        })?,
        Some(_) => {
            return Err(invalid_metadata(
                "token_endpoint_auth_method must be a string",
            ))
        }
    };
    // RFC 7591 §2: grant_types defaults to authorization_code.
    let grants = strings(&doc, "grant_types")?
        .unwrap_or_else(|| vec![grant_types::AUTHORIZATION_CODE.to_owned()]);
    let code = grants.iter().any(|g| g == grant_types::AUTHORIZATION_CODE);
    // RFC 7591 §2.1: `code` goes with authorization_code; no other response type exists here.
    match strings(&doc, "response_types")? {
        None => {}
        Some(types) => {
            if let Some(t) = types.iter().find(|t| *t != "code") {
                return Err(invalid_metadata(format!(
                    "response type '{t}' is not supported (only code)"
                )));
            }
            if code != types.iter().any(|t| t == "code") {
                return Err(invalid_metadata(
                    "response_types and grant_types disagree: response type code goes with \
                     the authorization_code grant type (RFC 7591 §2.1)",
                ));
            }
        }
    }
    if open {
        if let Some(g) = grants
            .iter()
            .find(|g| !OPEN_GRANT_TYPES.contains(&g.as_str()))
        {
            return Err(invalid_metadata(format!(
                "grant type '{g}' cannot be registered without an operator (open registration \
                 takes authorization_code and refresh_token)"
            )));
        }
    }
    let scope = match doc.get("scope") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(invalid_metadata("scope must be a string")),
    };
    let name = match doc.get("client_name") {
        None => "unnamed client".to_owned(),
        Some(Value::String(s)) if !s.trim().is_empty() && s.chars().count() <= 200 => s.clone(),
        Some(_) => {
            return Err(invalid_metadata(
                "client_name must be a string of 1 to 200 characters",
            ))
        }
    };
    let keys = match doc.get("jwks") {
        None => PublicKeys::default(),
        Some(v @ Value::Object(_)) => PublicKeys {
            jwks: Some(KeyDocument {
                source: Some("jwks".to_owned()),
                text: v.to_string(),
            }),
            pems: Vec::new(),
        },
        Some(_) => return Err(invalid_metadata("jwks must be a JSON Web Key Set object")),
    };
    let post_logout_redirect_uris = strings(&doc, "post_logout_redirect_uris")?;
    let backchannel_logout_uri = match doc.get("backchannel_logout_uri") {
        None => None,
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(_) => {
            return Err(invalid_metadata(
                "backchannel_logout_uri must be a non-empty string",
            ))
        }
    };
    let backchannel_logout_session_required = match doc.get("backchannel_logout_session_required") {
        None => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => {
            return Err(invalid_metadata(
                "backchannel_logout_session_required must be a boolean",
            ))
        }
    };
    // Which APIs the client may exchange tokens for (RFC 8693): an operator's choice, so
    // open registration ignores it, as it ignores `audiences` and `skip_consent`.
    let token_exchange_audiences = if open {
        None
    } else {
        strings(&doc, "token_exchange_audiences")?
    };
    // RFC 9449 §5.2: a boolean, false when omitted.
    let dpop_bound = match doc.get("dpop_bound_access_tokens") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(invalid_metadata(
                "dpop_bound_access_tokens must be a boolean",
            ))
        }
    };
    // RFC 9126 §6: a boolean, false when omitted.
    let require_par = match doc.get("require_pushed_authorization_requests") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(invalid_metadata(
                "require_pushed_authorization_requests must be a boolean",
            ))
        }
    };
    let spec = ClientSpec {
        name,
        env: None,
        public: method == AuthMethod::None,
        token_endpoint_auth_method: Some(method.as_str().to_owned()),
        keys,
        client_id: None,
        secret_hash: None,
        settings: ClientSettings {
            grant_types: Some(grants),
            redirect_uris: Some(redirect_uris.unwrap_or_default()),
            scope,
            post_logout_redirect_uris,
            token_exchange_audiences,
            skip_consent: Some(false),
            backchannel_logout_uri,
            backchannel_logout_session_required,
            require_pushed_authorization_requests: Some(require_par),
            dpop_bound_access_tokens: Some(dpop_bound),
            ..ClientSettings::default()
        },
    };
    Ok((spec, doc))
}

/// An optional array of strings.
fn strings(doc: &Map<String, Value>, field: &str) -> Result<Option<Vec<String>>, OAuthError> {
    match doc.get(field) {
        None => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| invalid_metadata(format!("{field} must be an array of strings")))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(invalid_metadata(format!(
            "{field} must be an array of strings"
        ))),
    }
}

/// Checks the initial access token of a registration when registration requires one
/// (RFC 7591 §3): an admin token with [`REGISTER_SCOPE`] (or `admin`). Answers the admin
/// token's id, for the record, or `None` when no token is required.
pub async fn check_initial_access_token(
    cx: &Cx<'_>,
    token: Option<&str>,
) -> Result<Option<String>, OAuthError> {
    if cx.config.dynamic_registration != crate::config::DynamicRegistration::Token {
        return Ok(None);
    }
    let token = token.ok_or_else(|| {
        OAuthError::invalid_token("registration requires an initial access token (RFC 7591 §3)")
    })?;
    // The bootstrap admin credential is not an initial access token: it is kept for the
    // operator, never handed to a registrant.
    let principal = admin_tokens::authenticate(cx.store, token, None, cx.now)
        .await
        .map_err(from_admin)?
        .map_err(|refused| OAuthError::invalid_token(refused.to_string()))?;
    if !principal.may(REGISTER_SCOPE) {
        return Err(OAuthError::new(
            ErrorCode::InsufficientScope,
            format!("the initial access token lacks the scope {REGISTER_SCOPE}"),
        ));
    }
    Ok(principal.token_id)
}

/// Registers a client (RFC 7591 §3.1) once its initial access token, if registration
/// requires one, is accepted ([`check_initial_access_token`]). The caller has checked that
/// registration is on.
pub async fn register(
    cx: &Cx<'_>,
    initial_access_token: Option<&str>,
    body: &[u8],
) -> Result<Registered, OAuthError> {
    let registrant = match check_initial_access_token(cx, initial_access_token).await {
        Ok(id) => id.map_or(Actor::Anonymous, Actor::AdminToken),
        Err(e) => {
            let event = AuditEvent::new(cx.now, AuditKind::AdminTokenRefused, Actor::Anonymous)
                .failed()
                .request(&cx.request)
                .detail(serde_json::json!({
                    "via": "dynamic_registration",
                    "error": e.code.as_str(),
                }));
            audit::record(cx.store, event).await;
            return Err(e);
        }
    };
    let open = cx.config.dynamic_registration == crate::config::DynamicRegistration::Open;
    let (spec, _) = read_metadata(body, open)?;
    let created = clients::create(cx.store, cx.config, spec, cx.now)
        .await
        .map_err(from_admin)?;
    let token = secret::generate(TOKEN_PREFIX);
    let hash = token.hash();
    if !cx
        .store
        .set_registration_token(&created.client.client_id, Some(&hash), cx.now)
        .await?
    {
        return Err(OAuthError::server_error(AdminError::Internal(
            "the client registered vanished".into(),
        )));
    }
    let event = AuditEvent::new(cx.now, AuditKind::ClientCreated, registrant)
        .target(created.client.client_id.clone())
        .request(&cx.request)
        .detail(serde_json::json!({ "via": "dynamic_registration" }));
    audit::record(cx.store, event).await;
    Ok(Registered {
        client: created.client,
        secret: created.secret,
        registration_access_token: token,
    })
}

/// The client a registration access token manages (RFC 7592 §2): `invalid_token` for a
/// missing or wrong token, or a client that does not exist or was not registered here.
pub async fn authorize(
    cx: &Cx<'_>,
    client_id: &str,
    token: Option<&str>,
) -> Result<ClientRecord, OAuthError> {
    let refused = || OAuthError::invalid_token("the registration access token is not valid");
    let token = token.ok_or_else(refused)?;
    let presented = SecretHash::of(token);
    let stored = cx.store.registration_token(client_id).await?;
    // Compared in constant time; an unknown client compares against nothing and fails.
    if !stored.is_some_and(|h| h.ct_eq(&presented)) {
        return Err(refused());
    }
    cx.store.get_client(client_id).await?.ok_or_else(refused)
}

/// Replaces a registration (RFC 7592 §2.2): every field not sent takes its default (the
/// metadata is replaced, not merged). The `client_id` must be sent and match; a
/// `client_secret`, if sent, must be the client's; the authentication method cannot change
/// (register a new client instead); the secret and the registration access token stay.
pub async fn update(
    cx: &Cx<'_>,
    client_id: &str,
    token: Option<&str>,
    body: &[u8],
) -> Result<ClientRecord, OAuthError> {
    let current = authorize(cx, client_id, token).await?;
    let open = cx.config.dynamic_registration == crate::config::DynamicRegistration::Open;
    let (spec, doc) = read_metadata(body, open)?;
    if doc.get("client_id").and_then(Value::as_str) != Some(client_id) {
        return Err(invalid_metadata(
            "client_id must be sent and be the registration's (RFC 7592 §2.2)",
        ));
    }
    if let Some(sent) = doc.get("client_secret") {
        let matches = sent.as_str().is_some_and(|s| {
            current
                .secret_hash
                .as_ref()
                .is_some_and(|h| h.ct_eq(&SecretHash::of(s)))
        });
        if !matches {
            return Err(invalid_metadata(
                "client_secret must be the client's current secret (RFC 7592 §2.2)",
            ));
        }
    }
    let requested = spec
        .token_endpoint_auth_method
        .as_deref()
        .and_then(AuthMethod::parse);
    let now_method = AuthMethod::of(&current);
    let same = match (requested, now_method) {
        (Some(AuthMethod::ClientSecretPost), AuthMethod::ClientSecretBasic) => true,
        (Some(r), m) => r == m,
        (None, _) => false,
    };
    if !same {
        return Err(invalid_metadata(
            "token_endpoint_auth_method cannot change: register a new client instead",
        ));
    }
    if now_method == AuthMethod::PrivateKeyJwt && spec.keys.given() {
        clients::set_keys(cx.store, client_id, &spec.keys, cx.now)
            .await
            .map_err(from_admin)?;
    }
    let patch = clients::ClientPatch {
        name: Some(spec.name),
        settings: spec.settings,
    };
    let updated = clients::update(cx.store, cx.config, client_id, patch, cx.now)
        .await
        .map_err(from_admin)?;
    record_management(cx, AuditKind::ClientUpdated, client_id).await;
    Ok(updated)
}

/// Records a change a registrant made to its own registration (RFC 7592).
async fn record_management(cx: &Cx<'_>, kind: AuditKind, client_id: &str) {
    let event = AuditEvent::new(cx.now, kind, Actor::Client(client_id.to_owned()))
        .target(client_id.to_owned())
        .request(&cx.request)
        .detail(serde_json::json!({ "via": "dynamic_registration" }));
    audit::record(cx.store, event).await;
}

/// Deletes a registration (RFC 7592 §2.3): the client and its registration access token go,
/// and its tokens stop being valid.
pub async fn delete(cx: &Cx<'_>, client_id: &str, token: Option<&str>) -> Result<(), OAuthError> {
    authorize(cx, client_id, token).await?;
    clients::revoke_tokens(cx.store, client_id, cx.now)
        .await
        .map_err(from_admin)?;
    clients::delete(cx.store, client_id, cx.now)
        .await
        .map_err(from_admin)?;
    record_management(cx, AuditKind::ClientDeleted, client_id).await;
    Ok(())
}

/// The client information response (RFC 7591 §3.2.1, RFC 7592 §3): the registered metadata,
/// with the secret and the registration access token when just made (they are shown once).
pub fn client_information(
    cx: &Cx<'_>,
    client: &ClientRecord,
    secret: Option<&Secret>,
    registration_access_token: Option<&Secret>,
) -> Value {
    let method = AuthMethod::of(client);
    let code = client.allows_grant(grant_types::AUTHORIZATION_CODE);
    let mut doc = serde_json::json!({
        "client_id": client.client_id,
        "client_id_issued_at": client.created_at,
        "client_name": client.name,
        "token_endpoint_auth_method": method.as_str(),
        "grant_types": client.grant_types,
        "response_types": if code { vec!["code"] } else { Vec::new() },
        "redirect_uris": client.redirect_uris,
        "registration_client_uri": cx.config.endpoint(&format!(
            "{}/{}",
            crate::endpoint::path(crate::endpoint::EndpointId::Register),
            client.client_id
        )),
    });
    if let Some(map) = doc.as_object_mut() {
        if !client.scopes.is_empty() {
            map.insert("scope".into(), client.scopes.to_string().into());
        }
        if !client.user_flow.post_logout_redirect_uris.is_empty() {
            map.insert(
                "post_logout_redirect_uris".into(),
                client.user_flow.post_logout_redirect_uris.clone().into(),
            );
        }
        if let Some(uri) = &client.user_flow.backchannel_logout_uri {
            map.insert("backchannel_logout_uri".into(), uri.clone().into());
            map.insert(
                "backchannel_logout_session_required".into(),
                client.user_flow.backchannel_logout_session_required.into(),
            );
        }
        if !client.user_flow.token_exchange_audiences.is_empty() {
            map.insert(
                "token_exchange_audiences".into(),
                client.user_flow.token_exchange_audiences.clone().into(),
            );
        }
        if client.user_flow.require_par {
            map.insert("require_pushed_authorization_requests".into(), true.into());
        }
        if client.user_flow.dpop_bound_access_tokens {
            map.insert("dpop_bound_access_tokens".into(), true.into());
        }
        if let Some(s) = secret {
            map.insert("client_secret".into(), s.expose().into());
        }
        if client.secret_hash.is_some() {
            // RFC 7591 §3.2.1: 0, the secret does not expire.
            map.insert("client_secret_expires_at".into(), 0.into());
        }
        if let Some(t) = registration_access_token {
            map.insert("registration_access_token".into(), t.expose().into());
        }
    }
    doc
}
