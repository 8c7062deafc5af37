//! The catalog's one integration-test binary.

mod backstage;
mod files;
mod fixture;
mod query;
