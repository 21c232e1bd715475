//! `POST /oauth2/register` (RFC 7591 §3) and `GET|PUT|DELETE /oauth2/register/{client_id}`
//! (RFC 7592 §2), served only when `dynamic_registration` is not off.
//!
//! Owns the wire form only; every rule is the core's ([`tessera_core::endpoint::register`]).
//! When registration requires an initial access token (RFC 7591 §3) it comes as
//! `Authorization: Bearer` on `POST /oauth2/register`, as the registration access token does
//! on the others.
//! The body must be JSON (`Content-Type: application/json`, RFC 7591 §3.1: a page of another
//! origin cannot send that without a preflight, and the endpoint has no CORS); the registration
//! access token comes as `Authorization: Bearer` (RFC 6750 §2.1). Answers are JSON with
//! `Cache-Control: no-store` (RFC 7591 §3.2.1).

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, request::Parts, StatusCode};
use axum::response::{IntoResponse, Response};
use tessera_core::endpoint::register;
use tessera_core::OAuthError;

use crate::error::{error_response, json_no_store};
use crate::extract::read_body;
use crate::state::AppState;

/// Reads a JSON body.
async fn json_body(state: &AppState, parts: &Parts, body: Body) -> Result<Vec<u8>, OAuthError> {
    let json = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .eq_ignore_ascii_case("application/json")
        });
    if !json {
        return Err(OAuthError::invalid_request(
            "the body must be JSON (Content-Type: application/json, RFC 7591 §3.1)",
        ));
    }
    Ok(read_body(body, state.http().body_limit).await?.to_vec())
}

/// The registration access token of `Authorization: Bearer`, if any.
fn bearer(parts: &Parts) -> Option<String> {
    let v = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
        .filter(|t| !t.is_empty())
}

/// `POST /oauth2/register`: 201 with the client information (RFC 7591 §3.2.1).
pub async fn create(State(state): State<AppState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let host = state.host(&parts);
    let body = match json_body(&state, &parts, body).await {
        Ok(b) => b,
        Err(e) => return error_response(e),
    };
    let keys = state.keys();
    let mut cx = state.cx_for(&host, &keys);
    cx.request = crate::extract::request_meta(&parts, &state.http().trusted_proxies);
    match register::register(&cx, bearer(&parts).as_deref(), &body).await {
        Ok(r) => json_no_store(
            StatusCode::CREATED,
            register::client_information(
                &cx,
                &r.client,
                r.secret.as_ref(),
                Some(&r.registration_access_token),
            )
            .to_string(),
        ),
        Err(e) => error_response(e),
    }
}

/// `GET /oauth2/register/{client_id}`: the registration (RFC 7592 §2.1).
pub async fn read(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    req: Request,
) -> Response {
    let (parts, _) = req.into_parts();
    let host = state.host(&parts);
    let keys = state.keys();
    let mut cx = state.cx_for(&host, &keys);
    cx.request = crate::extract::request_meta(&parts, &state.http().trusted_proxies);
    match register::authorize(&cx, &client_id, bearer(&parts).as_deref()).await {
        Ok(client) => json_no_store(
            StatusCode::OK,
            register::client_information(&cx, &client, None, None).to_string(),
        ),
        Err(e) => error_response(e),
    }
}

/// `PUT /oauth2/register/{client_id}`: replaces the registration (RFC 7592 §2.2).
pub async fn update(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let host = state.host(&parts);
    let token = bearer(&parts);
    let keys = state.keys();
    let mut cx = state.cx_for(&host, &keys);
    cx.request = crate::extract::request_meta(&parts, &state.http().trusted_proxies);
    // The token is checked before the body is read or judged.
    if let Err(e) = register::authorize(&cx, &client_id, token.as_deref()).await {
        return error_response(e);
    }
    let body = match json_body(&state, &parts, body).await {
        Ok(b) => b,
        Err(e) => return error_response(e),
    };
    match register::update(&cx, &client_id, token.as_deref(), &body).await {
        Ok(client) => json_no_store(
            StatusCode::OK,
            register::client_information(&cx, &client, None, None).to_string(),
        ),
        Err(e) => error_response(e),
    }
}

/// `DELETE /oauth2/register/{client_id}`: 204, the client is gone (RFC 7592 §2.3).
pub async fn delete(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    req: Request,
) -> Response {
    let (parts, _) = req.into_parts();
    let host = state.host(&parts);
    let keys = state.keys();
    let mut cx = state.cx_for(&host, &keys);
    cx.request = crate::extract::request_meta(&parts, &state.http().trusted_proxies);
    match register::delete(&cx, &client_id, bearer(&parts).as_deref()).await {
        Ok(()) => (
            StatusCode::NO_CONTENT,
            [(header::CACHE_CONTROL, "no-store")],
        )
            .into_response(),
        Err(e) => error_response(e),
    }
}
