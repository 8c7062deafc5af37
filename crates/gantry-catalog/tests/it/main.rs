//! The catalog's one integration-test binary.

mod backstage;
mod catalog_index;
mod files;
mod fixture;
mod jq;
mod query;
mod query_properties;
