//! Running exported models on ONNX Runtime through `ort`: finding and loading the library
//! ([`runtime`]), execution providers and sessions.
pub mod batch_axis;
pub mod runtime;
pub mod session;

pub use runtime::Device;
pub use session::{DeviceTensor, Graph, Input, IoBinding, SessionOptions, Tensor, TrtProfile};
