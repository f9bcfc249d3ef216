//! Small helpers shared by every stage: atomic file writes, hashing, human-readable sizes, the
//! HTTP client, CPython's RNG ([`rng`]) and the [`reporter`] library code talks to the user through.
pub mod fs;
pub mod hash;
pub mod http;
pub mod reporter;
pub mod rng;
