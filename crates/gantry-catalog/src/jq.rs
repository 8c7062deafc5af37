//! TEMPORARY stand-in until the jq module lands (not to be committed to main).
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Limits {
    pub time: Duration,
    pub max_output_bytes: usize,
}
impl Default for Limits {
    fn default() -> Self {
        Limits {
            time: Duration::from_millis(50),
            max_output_bytes: 64 * 1024,
        }
    }
}
#[derive(Debug, Clone)]
pub struct JqProgram;
#[derive(Debug)]
pub enum JqError {
    Failed(String),
}
impl std::fmt::Display for JqError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JqError::Failed(m) => f.write_str(m),
        }
    }
}
impl JqProgram {
    pub fn compile(_src: &str) -> Result<JqProgram, String> {
        Ok(JqProgram)
    }
    pub fn run(
        &self,
        _input: &serde_json::Value,
        _limits: &Limits,
    ) -> Result<serde_json::Value, JqError> {
        Err(JqError::Failed("stand-in".into()))
    }
}
