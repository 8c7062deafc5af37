//! The catalog's one integration-test binary.

mod files;
