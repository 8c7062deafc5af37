//! Integration tests of the workflow language, one binary with a module per feature.

mod agent;
mod corpus;
mod coverage;
mod data;
mod evaluation;
mod generated;
mod properties;

use std::path::{Path, PathBuf};

pub(crate) fn corpus_dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(kind)
}

/// The `.yaml` files of a corpus directory, sorted by name.
pub(crate) fn corpus_files(kind: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir(kind))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}
