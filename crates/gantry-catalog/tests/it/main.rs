//! The catalog's one integration-test binary.

mod fixture;
mod query;
mod query_properties;
