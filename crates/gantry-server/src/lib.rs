//! Gantry's HTTP edge.
//!
//! Today this crate holds the metadata API ([`metadata`]), the HTTP service that step and
//! trigger containers call to read their `spec`, set outputs, emit events and so on, with
//! Relay's paths, envelopes and status codes so that Relay's own clients (PyPI's `relay-sdk`,
//! the `ni` CLI) work unchanged. [`vault`] seals secret values at rest, [`apikey`] makes and
//! checks API keys, [`authz`] decides who may do what, and [`oidc`] is the client side of single
//! sign-on with an OpenID Connect provider. The REST API ([`api`]), webhook ingest
//! ([`triggers`]) and the runs ([`runs`]) are here too.
//!
//! This crate owns the wire format: request parsing, response envelopes, status codes and the
//! error table. It must not hold engine logic: every decision about a run is delegated to
//! [`gantry_engine::metadata::MetadataBackend`]. Serde types live here and are converted by
//! hand from domain types, so the API cannot change by accident.
//!
//! Concurrency: handlers run on the caller's tokio runtime and share only an
//! `Arc<dyn MetadataBackend>`; the backend's synchronous methods are called inline, so they
//! must not block for long.

pub mod actions;
pub mod agents;
pub mod api;
pub mod apikey;
pub mod authz;
pub mod automations;
mod cache;
pub mod catalog;
pub mod metadata;
pub mod oidc;
pub mod passwords;
pub mod queue;
pub mod ratelimit;
pub mod runs;
pub mod scorecards;
pub mod server;
pub mod triggers;
pub mod vault;
pub mod workers;
