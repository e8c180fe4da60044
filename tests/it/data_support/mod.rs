//! Helpers shared by the data tests.

use std::path::{Path, PathBuf};

/// `../shared/data/<name>` beside the checkout, or `None` (with a printed notice) when absent,
/// so the tests skip on a fresh clone instead of failing.
pub fn shared(name: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data")
        .join(name);
    if p.exists() {
        Some(p)
    } else {
        crate::skip_support::missing(format!("{} is not present", p.display()));
        None
    }
}
