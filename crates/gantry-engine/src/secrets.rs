//! Secret and connection lookup. Values are asked for only when a step's spec or env names them.

use serde_json::Value;

pub trait SecretResolver: Send + Sync {
    /// The value of secret `name`, or `None` when it does not exist.
    fn secret(&self, name: &str) -> Option<String>;
    /// The fields of connection `type`/`name`, or `None` when it does not exist.
    fn connection(&self, type_: &str, name: &str) -> Option<Value>;
}
