//! The software catalog of Gantry: blueprints, entities and relations, their validation,
//! computed properties, the query language, self-service actions, scorecards and initiatives, the
//! definition-file formats and the Backstage import.
//!
//! No I/O: the store keeps rows, the server keeps an in-memory [`index::Catalog`] in step with
//! them, and everything that decides what a blueprint or entity means lives here.

pub mod action;
pub mod automation;
pub mod backstage;
pub mod computed;
pub mod diff;
pub mod files;
pub mod index;
pub mod jq;
pub mod model;
pub mod query;
pub mod schema;
pub mod scorecard;
mod table;

pub use model::*;
