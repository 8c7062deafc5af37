//! The catalog's one integration-test binary.

mod action;
mod automation;
mod backstage;
mod catalog_index;
mod columns;
mod computed;
mod files;
mod fixture;
mod fixture_schema;
mod jq;
mod query;
mod query_properties;
mod schema;
mod scorecard;
