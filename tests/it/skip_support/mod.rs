//! One rule for tests whose prerequisite (a model file, the shared data, a Python package, a
//! program) is missing: locally they skip, loudly; under CI (the `CI` environment variable is
//! set, as CI services set it) they fail, so a missing prerequisite never passes as green.

/// Reports that the calling test cannot run because `what` is missing: panics under CI,
/// otherwise prints `SKIPPED: {what}` and returns, and the caller returns.
#[allow(dead_code)]
pub fn missing(what: impl std::fmt::Display) {
    if in_ci() {
        panic!(
            "prerequisite missing under CI (CI is set, so this test fails instead of skipping): {what}"
        );
    }
    eprintln!("SKIPPED: {what}");
}

/// Whether the `CI` variable asks for strict prerequisites (set, and not `0` or `false`).
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
}
