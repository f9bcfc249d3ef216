//! Small helpers shared by every stage: atomic file writes, hashing, human-readable sizes.
pub mod fs;
pub mod hash;
