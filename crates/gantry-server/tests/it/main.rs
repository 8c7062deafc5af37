//! Integration tests of the metadata API: the router called in-process with
//! `tower::ServiceExt::oneshot` against [`backend::MapBackend`], plus one test that runs PyPI's
//! real `relay-sdk` against the router on a socket, and the OIDC client against a real OpenID
//! provider on loopback.

mod access;
mod api;
mod auth;
mod authz;
mod backend;
mod client;
mod endpoints;
mod oidc;
mod openapi;
mod relay_sdk;
mod spec;
mod triggers;
