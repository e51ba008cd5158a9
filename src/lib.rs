//! edgecap: BLIP image captioning that runs on the device — CPU (candle-core) or WebGPU (wgpu).
#![deny(unsafe_op_in_unsafe_fn)]

pub mod backend;
pub mod caption;
pub mod config;
pub mod error;
pub mod eval;
pub mod fuzz_targets;
pub mod generate;
pub mod model;
pub mod preprocess;
pub mod tokenizer;
#[cfg(target_arch = "wasm32")]
pub mod web;
pub mod weights;

pub use caption::{Caption, CaptionOptions, Captioner, Timings};
pub use error::{Error, Result};

/// Largest input side the vision encoder accepts (position tables are interpolated up to it).
pub const MAX_INPUT_SIZE: usize = 1024;
