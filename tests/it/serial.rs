//! Tests in this binary run on parallel threads of one process, so state the library keeps per
//! process is shared between them. burn's Flex backend keeps one RNG for the whole process
//! (`Backend::seed` stores it; parameter init and dropout draw from it): two tests training at
//! once draw from each other's stream, and a test comparing two seeded runs then sees different
//! numbers. Every test that seeds or draws from burn's RNG holds [`burn_rng`] while it does.
//!
//! (The other process-wide state, the Ctrl-C flag, has a scoped variant: a test interrupts only
//! its own stage by running it under `pipeline::cancel_scope` and cancelling the token.)

use std::sync::{Mutex, MutexGuard};

static BURN_RNG: Mutex<()> = Mutex::new(());

/// Holds burn's process-wide RNG for the caller until the guard drops. A test that failed while
/// holding it poisons nothing for the others: its panic is its own report.
pub fn burn_rng() -> MutexGuard<'static, ()> {
    BURN_RNG
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
