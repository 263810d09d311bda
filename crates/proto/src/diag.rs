//! Diagnostics shared by every parser: a parsed value together with the
//! non-fatal [`Warning`]s found while parsing it.
//!
//! A warning never changes the parsed value; it points out input that the
//! RFC grammar allows (or that this crate tolerates) but that some other
//! implementation is known to reject or misread.

use std::fmt;

/// A successfully parsed value plus the warnings found on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed<T> {
    /// The parsed value.
    pub value: T,
    /// Non-fatal findings, in input order.
    pub warnings: Vec<Warning>,
}

impl<T> Parsed<T> {
    /// Wraps a value with no warnings.
    pub fn clean(value: T) -> Self {
        Self { value, warnings: Vec::new() }
    }

    /// Discards the warnings and returns the value.
    pub fn into_value(self) -> T {
        self.value
    }

    /// Whether the value parsed without any warning.
    pub fn is_clean(&self) -> bool {
        self.warnings.is_empty()
    }

    /// Whether a warning with this code was raised.
    pub fn has_warning(&self, code: &str) -> bool {
        self.warnings.iter().any(|w| w.code == code)
    }
}

/// A non-fatal finding.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Warning {
    /// Stable, kebab-case identifier (for example `policy-blank-line`).
    /// Codes are part of the public API and never change meaning.
    pub code: &'static str,
    /// 1-based line number, for line-oriented inputs such as the policy file.
    pub line: Option<usize>,
    /// Human-readable explanation citing the RFC section.
    pub message: String,
}

impl Warning {
    /// Builds a warning.
    pub fn new(code: &'static str, line: Option<usize>, message: impl Into<String>) -> Self {
        Self { code, line, message: message.into() }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        write!(f, "{} [{}]", self.message, self.code)
    }
}

/// An I/O error in the operating system's words, without Rust's " (os error N)" suffix
/// ("No such file or directory", "Is a directory"): for messages to administrators.
pub fn io_words(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}
