//! Endpoints: one module per endpoint, each a `handle` function reading as named steps.

pub mod authorize;
pub mod discovery;
pub mod introspect;
pub mod revoke;
pub mod sdk_token;
pub mod token;
pub mod userinfo;
