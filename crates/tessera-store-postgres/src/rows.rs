//! Reading rows back into core records.

use sqlx::postgres::PgRow;
use sqlx::Row;

use tessera_core::model::{
    ClientRecord, CodeRecord, ConsentRecord, EnvRecord, GrantRecord, KeyRecord,
    LogoutDeliveryRecord, RefreshRecord, SessionRecord, TokenFormat, TokenRecord, TrustRecord,
    UserFlowSettings, UserRecord,
};
use tessera_core::resource::Audience;
use tessera_core::scope::ScopeSet;
use tessera_core::secret::SecretHash;
use tessera_core::store::StoreError;

fn get<'r, T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>>(
    row: &'r PgRow,
    col: &str,
) -> Result<T, StoreError> {
    row.try_get(col)
        .map_err(|e| StoreError::Corrupt(format!("column {col}: {e}")))
}

fn words(s: &str) -> Vec<String> {
    s.split(' ')
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

pub(crate) fn client(row: &PgRow) -> Result<ClientRecord, StoreError> {
    let format: String = get(row, "access_token_format")?;
    let scopes: String = get(row, "scopes")?;
    Ok(ClientRecord {
        client_id: get(row, "client_id")?,
        name: get(row, "name")?,
        secret_hash: get::<Option<String>>(row, "secret_hash")?.map(SecretHash::from_stored),
        old_secret_hash: get::<Option<String>>(row, "old_secret_hash")?
            .map(SecretHash::from_stored),
        old_secret_expires_at: get(row, "old_secret_expires_at")?,
        grant_types: words(&get::<String>(row, "grant_types")?),
        redirect_uris: words(&get::<String>(row, "redirect_uris")?),
        scopes: ScopeSet::parse(&scopes)
            .map_err(|_| StoreError::Corrupt(format!("scopes {scopes}")))?,
        audiences: words(&get::<String>(row, "audiences")?),
        public: get(row, "public")?,
        jwks: get(row, "jwks")?,
        access_token_format: TokenFormat::parse(&format)
            .ok_or_else(|| StoreError::Corrupt(format!("token format {format}")))?,
        access_token_ttl: get(row, "access_token_ttl")?,
        token_epoch: get(row, "token_epoch")?,
        env: get(row, "env")?,
        single_use_tokens: get(row, "single_use_tokens")?,
        created_at: get(row, "created_at")?,
        user_flow: serde_json::from_str(&get::<String>(row, "user_flow")?)
            .map_err(|e| StoreError::Corrupt(format!("user_flow: {e}")))?,
    })
}

pub(crate) fn user_flow_json(s: &UserFlowSettings) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "{}".to_owned())
}

pub(crate) fn user(row: &PgRow) -> Result<UserRecord, StoreError> {
    Ok(UserRecord {
        user_id: get(row, "user_id")?,
        username: get(row, "username")?,
        password_hash: get(row, "password_hash")?,
        email: get(row, "email")?,
        name: get(row, "name")?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

pub(crate) fn session(row: &PgRow) -> Result<SessionRecord, StoreError> {
    Ok(SessionRecord {
        session_hash: SecretHash::from_stored(get::<String>(row, "session_hash")?),
        user_id: get(row, "user_id")?,
        auth_time: get(row, "auth_time")?,
        expires_at: get(row, "expires_at")?,
    })
}

pub(crate) fn code(row: &PgRow) -> Result<CodeRecord, StoreError> {
    Ok(CodeRecord {
        code_hash: SecretHash::from_stored(get::<String>(row, "code_hash")?),
        client_id: get(row, "client_id")?,
        user_id: get(row, "user_id")?,
        redirect_uri: get(row, "redirect_uri")?,
        scope: get(row, "scope")?,
        nonce: get(row, "nonce")?,
        code_challenge: get(row, "code_challenge")?,
        code_challenge_method: get(row, "code_challenge_method")?,
        auth_time: get(row, "auth_time")?,
        grant_id: get(row, "grant_id")?,
        sid: get(row, "sid")?,
        extra: get(row, "extra")?,
        issued_at: get(row, "issued_at")?,
        expires_at: get(row, "expires_at")?,
    })
}

pub(crate) fn logout_delivery(row: &PgRow) -> Result<LogoutDeliveryRecord, StoreError> {
    Ok(LogoutDeliveryRecord {
        id: get(row, "id")?,
        client_id: get(row, "client_id")?,
        uri: get(row, "uri")?,
        sub: get(row, "sub")?,
        sid: get(row, "sid")?,
        attempts: get(row, "attempts")?,
        next_attempt_at: get(row, "next_attempt_at")?,
        created_at: get(row, "created_at")?,
    })
}

pub(crate) fn consent(row: &PgRow) -> Result<ConsentRecord, StoreError> {
    Ok(ConsentRecord {
        user_id: get(row, "user_id")?,
        client_id: get(row, "client_id")?,
        scope: get(row, "scope")?,
        granted_at: get(row, "granted_at")?,
    })
}

pub(crate) fn grant(row: &PgRow) -> Result<GrantRecord, StoreError> {
    Ok(GrantRecord {
        grant_id: get(row, "grant_id")?,
        client_id: get(row, "client_id")?,
        user_id: get(row, "user_id")?,
        scope: get(row, "scope")?,
        auth_time: get(row, "auth_time")?,
        nonce: get(row, "nonce")?,
        token_epoch: get(row, "token_epoch")?,
        created_at: get(row, "created_at")?,
        refresh_expires_at: get(row, "refresh_expires_at")?,
        expires_at: get(row, "expires_at")?,
        revoked_at: get(row, "revoked_at")?,
        claims: get(row, "claims")?,
        sid: get(row, "sid")?,
        dpop_jkt: get(row, "dpop_jkt")?,
    })
}

pub(crate) fn refresh(row: &PgRow) -> Result<RefreshRecord, StoreError> {
    Ok(RefreshRecord {
        token_id: get(row, "token_id")?,
        token_hash: SecretHash::from_stored(get::<String>(row, "token_hash")?),
        grant_id: get(row, "grant_id")?,
        client_id: get(row, "client_id")?,
        scope: get(row, "scope")?,
        issued_at: get(row, "issued_at")?,
        expires_at: get(row, "expires_at")?,
        used_at: get(row, "used_at")?,
        successor_sealed: get(row, "successor_sealed")?,
    })
}

pub(crate) fn token(row: &PgRow) -> Result<TokenRecord, StoreError> {
    Ok(TokenRecord {
        token_id: get(row, "token_id")?,
        token_hash: SecretHash::from_stored(get::<String>(row, "token_hash")?),
        jti: get(row, "jti")?,
        client_id: get(row, "client_id")?,
        subject: get(row, "subject")?,
        scope: get(row, "scope")?,
        audience: Audience::from_stored(&get::<String>(row, "audience")?),
        issued_at: get(row, "issued_at")?,
        expires_at: get(row, "expires_at")?,
        token_epoch: get(row, "token_epoch")?,
        revoked_at: get(row, "revoked_at")?,
        grant_id: get(row, "grant_id")?,
        env: get(row, "env")?,
        claims: get(row, "claims")?,
        single_use: get(row, "single_use")?,
    })
}

pub(crate) fn key(row: &PgRow) -> Result<KeyRecord, StoreError> {
    Ok(KeyRecord {
        kid: get(row, "kid")?,
        alg: get(row, "alg")?,
        private_sealed: get(row, "private_sealed")?,
        public_jwk: get(row, "public_jwk")?,
        created_at: get(row, "created_at")?,
        activates_at: get(row, "activates_at")?,
        retires_at: get(row, "retires_at")?,
        sealed_by: get(row, "sealed_by")?,
    })
}

pub(crate) fn env(row: &PgRow) -> Result<EnvRecord, StoreError> {
    Ok(EnvRecord {
        name: get(row, "name")?,
        single_use_tokens: get(row, "single_use_tokens")?,
        created_at: get(row, "created_at")?,
    })
}

pub(crate) fn trust(row: &PgRow) -> Result<TrustRecord, StoreError> {
    let scopes: String = get(row, "scopes")?;
    let claims: String = get(row, "claims")?;
    Ok(TrustRecord {
        id: get(row, "id")?,
        env: get(row, "env")?,
        issuer: get(row, "issuer")?,
        keys: get(row, "keys")?,
        jwks_uri: get(row, "jwks_uri")?,
        subject_claim: get(row, "subject_claim")?,
        claims: serde_json::from_str(&claims)
            .map_err(|_| StoreError::Corrupt(format!("claims {claims}")))?,
        scopes: ScopeSet::parse(&scopes)
            .map_err(|_| StoreError::Corrupt(format!("scopes {scopes}")))?,
        created_at: get(row, "created_at")?,
    })
}
