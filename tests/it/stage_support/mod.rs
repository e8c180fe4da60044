//! Toy stages' settings: a JSON value, hashed as it is and read back by the stage's `run`.

use std::sync::Arc;

use recx::Result;
use recx::pipeline::{Resolved, StageContext, StageSettings};
use serde_json::Value;

/// Settings that are one JSON value.
pub struct Json(pub Value);

impl StageSettings for Json {
    fn fingerprint(&self) -> Value {
        self.0.clone()
    }
}

/// `value` as a stage's resolved settings.
pub fn json(value: Value) -> Result<Resolved> {
    Ok(Resolved::new(Json(value)))
}

/// The JSON settings of the running stage.
pub fn settings(ctx: &StageContext<'_>) -> Arc<Json> {
    ctx.settings::<Json>()
        .expect("a toy stage's settings are JSON")
}

/// A number from the running stage's JSON settings.
pub fn number(ctx: &StageContext<'_>, key: &str) -> f64 {
    settings(ctx).0[key]
        .as_f64()
        .unwrap_or_else(|| panic!("setting {key} is not a number"))
}
