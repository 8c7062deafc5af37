//! Integration tests of the metadata API: the router called in-process with
//! `tower::ServiceExt::oneshot` against [`backend::MapBackend`], plus one test that runs PyPI's
//! real `relay-sdk` against the router on a socket, and the OIDC client against a real OpenID
//! provider on loopback.

mod access;
mod actions;
mod api;
mod audit;
mod auth;
mod authz;
mod backend;
mod catalog;
mod client;
mod endpoints;
mod login;
mod oidc;
mod openapi;
mod relay_sdk;
mod scorecards;
mod spec;
mod triggers;

/// The audit context of a change a test makes straight in the store.
pub(crate) fn audit() -> gantry_store::Audit {
    gantry_store::Audit::system("test", chrono::Utc::now())
}

/// The same, at a chosen time.
pub(crate) fn audit_at(at: chrono::DateTime<chrono::Utc>) -> gantry_store::Audit {
    gantry_store::Audit::system("test", at)
}
