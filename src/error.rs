//! Errors are values: the CLI maps them to exit codes, the web app to its `error` state.

use std::fmt;

/// Which of the caller's inputs was wrong, so a front end can say what to fix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("model config: {0}")]
    Config(String),
    #[error("model file: {0}")]
    Model(String),
    #[error(transparent)]
    Gguf(#[from] crate::weights::gguf::GgufError),
    #[error("image: {0}")]
    Image(#[from] crate::preprocess::PreprocessError),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// An input side the model cannot take (not a multiple of its patch, or above the limit).
    #[error("image size: {0}")]
    ImageSize(String),
    #[error("generation: {0}")]
    Generate(String),
    #[error("backend {backend}: {message}")]
    Backend { backend: &'static str, message: String },
    /// Evaluation inputs (reference and prediction files, study settings); the message names the file.
    #[error("{0}")]
    Eval(String),
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn model(msg: impl fmt::Display) -> Self {
        Error::Model(msg.to_string())
    }

    pub fn config(msg: impl fmt::Display) -> Self {
        Error::Config(msg.to_string())
    }

    pub fn io(context: impl fmt::Display, source: std::io::Error) -> Self {
        Error::Io { context: context.to_string(), source }
    }
}
