//! Reports (placeholder while building).
