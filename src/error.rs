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
    /// A file or directory the command was given could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A value could not be written as JSON (`what` names it).
    #[error("{what} as JSON: {msg}")]
    Json {
        /// The value, e.g. `the run's settings`.
        what: String,
        /// serde_json's message.
        msg: String,
    },
    /// An output could not be written (a full disk, a lost mount); what was
    /// there before is kept (see [`crate::output::write_atomic`]).
    #[error("{path}: could not write: {source}")]
    Write {
        /// The file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl Error {
    /// Shorthand for [`Error::Invalid`]. Control characters in `field` and
    /// `msg` (from names in a bad file) are escaped, so the message is one line.
    pub fn invalid(field: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Invalid {
            field: one_line(field.into()),
            msg: one_line(msg.into()),
        }
    }

    /// Shorthand for [`Error::Json`].
    pub fn json(what: impl Into<String>, e: serde_json::Error) -> Self {
        Error::Json {
            what: what.into(),
            msg: e.to_string(),
        }
    }
}

impl Error {
    /// The exit status the command line gives this error: 2 when the input or
    /// the settings are bad ([`Error::Invalid`], [`Error::Io`]: fix the command
    /// or the file), 1 when a run failed ([`Error::NoAdapter`], [`Error::Gpu`],
    /// [`Error::Numerical`], [`Error::Json`], [`Error::Write`]). Success is 0.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Invalid { .. } | Error::Io { .. } => 2,
            Error::NoAdapter(_) | Error::Gpu(_) | Error::Numerical(_) | Error::Json { .. } | Error::Write { .. } => 1,
        }
    }
}

/// `s` with every control character escaped (`\n`, `\u{1b}`, ...).
fn one_line(s: String) -> String {
    if !s.chars().any(char::is_control) {
        return s;
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// What a file type is, in words, for a message (`is a FIFO, not a regular file`).
pub(crate) fn file_kind(t: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_char_device() || t.is_block_device() {
            return "a device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if t.is_dir() {
        "a directory"
    } else if t.is_symlink() {
        "a symbolic link"
    } else {
        "not a file"
    }
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
