//! Running exported models on ONNX Runtime through `ort`: finding and loading the library
//! ([`runtime`]), execution providers and sessions; [`binding`]: running a pipeline's graphs
//! with or without I/O binding.
pub mod batch_axis;
pub mod binding;
pub mod runtime;
pub mod session;

pub use binding::{BatchConstants, Kept};
pub use runtime::Device;
pub use session::{DeviceTensor, Graph, Input, IoBinding, SessionOptions, Tensor, TrtProfile};
