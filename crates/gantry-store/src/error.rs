//! `StoreError`: the one error type of the store.
//!
//! Owns the mapping from the database driver's errors to three cases callers can act on.
//! SQL text, constraint names and driver messages only ever travel inside `Database`,
//! which the API edge logs and never shows to a client.

/// What went wrong in a store call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The thing asked for (or a thing it refers to) does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The write contradicts what is stored: a duplicate, or a lease that is no longer held.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A page cursor that this store did not hand out.
    #[error("invalid page cursor")]
    InvalidCursor,
    /// The database failed or returned something unreadable. For logs, not for clients.
    #[error("database error: {0}")]
    Database(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::RowNotFound => StoreError::NotFound("row".to_owned()),
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict("already exists".to_owned())
            }
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                StoreError::NotFound("a referenced record".to_owned())
            }
            _ => StoreError::Database(err.to_string()),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(err: sqlx::migrate::MigrateError) -> Self {
        StoreError::Database(format!("migration failed: {err}"))
    }
}
