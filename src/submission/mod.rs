//! EvalAI submissions of the ODinW challenge: writing them from a run ([`write`]), checking
//! them against the test annotations ([`check`]), and the task keys they use ([`keys`]).
pub mod check;
pub mod keys;
mod lenient;
pub mod write;
