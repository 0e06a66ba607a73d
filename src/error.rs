//! The one error type of the library: every message names what is wrong.

/// Everything that can go wrong in sfnap, as a value.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration or input field has a bad value: `field` names it.
    #[error("{field}: {msg}")]
    Invalid {
        /// Dotted path of the offending field, e.g. `optimizer.lr`.
        field: String,
        /// What is wrong with it.
        msg: String,
    },
    /// No GPU adapter could be found or opened.
    #[error("{0}")]
    NoAdapter(String),
    /// The GPU rejected an operation or a readback failed.
    #[error("gpu: {0}")]
    Gpu(String),
    /// The optimizer met a value it cannot continue from (NaN loss, zero gradient).
    #[error("numerical: {0}")]
    Numerical(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl Error {
    /// Shorthand for [`Error::Invalid`].
    pub fn invalid(field: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Invalid {
            field: field.into(),
            msg: msg.into(),
        }
    }
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
