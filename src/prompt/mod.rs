//! Prompts: GLIP's caption for a task's classes and the class → token positive map that turns
//! token logits into class scores; OWLv2's queries in [`owlv2`], Grounding DINO's caption, chunks
//! and text masks in [`grounding_dino`].
pub mod caption;
pub mod clean_name;
pub mod grounding_dino;
pub mod owlv2;
pub mod positive_map;

pub use caption::{build_caption, task_caption, Caption, CaptionPart, ClassSpan, SEPARATOR};
pub use clean_name::clean_name;
pub use positive_map::{span_tokens, ClassTokens, PositiveMap, PromptTokenizer, MAX_QUERY_LEN};
