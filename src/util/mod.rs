//! Small helpers shared by every stage: atomic file writes, hashing, human-readable sizes, the
//! HTTP client.
pub mod fs;
pub mod hash;
pub mod http;
