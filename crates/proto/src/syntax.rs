//! Small grammar helpers shared by the TXT-record and policy parsers.
//!
//! RFC 8461 §3.1 and RFC 8460 §3 use the same field syntax for their TXT
//! records (`field-delim = *WSP ";" *WSP`, `name "=" value`), so the
//! splitting lives here once.

/// Longest extension name: `(ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")`
/// (RFC 8461 §3.1 `sts-ext-name`, §3.2 `sts-policy-ext-name`, RFC 8460 §3 `tlsrpt-ext-name`).
pub(crate) const EXT_NAME_MAX_LEN: usize = 32;

/// `WSP = SP / HTAB` (RFC 5234 Appendix B.1).
pub(crate) fn is_wsp(c: char) -> bool {
    c == ' ' || c == '\t'
}

pub(crate) fn trim_wsp(s: &str) -> &str {
    s.trim_matches(is_wsp)
}

/// `(ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")`.
pub(crate) fn is_ext_name(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphanumeric() => {}
        _ => return false,
    }
    s.len() <= EXT_NAME_MAX_LEN
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// TXT-record extension value: `1*(%x21-3A / %x3C / %x3E-7E)`
/// (RFC 8461 §3.1 `sts-ext-value`, RFC 8460 §3 `tlsrpt-ext-value`).
pub(crate) fn is_txt_ext_value(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| matches!(b, 0x21..=0x3A | 0x3C | 0x3E..=0x7E))
}

/// Why a TXT record could not be split into fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TxtSplitError {
    /// A byte outside US-ASCII; `index` is the byte offset.
    NotAscii { index: usize, ch: char },
    /// An ASCII control character other than HTAB.
    Control { index: usize, byte: u8 },
    /// The record does not begin with the version literal followed by
    /// end-of-record, WSP or ";".
    MissingVersion,
    /// Text after the version without a ";" in between.
    MissingDelimiter { text: String },
    /// An empty field between two delimiters (`;;`); `index` is 1-based.
    EmptyField { index: usize },
}

/// A TXT record split into its fields (the version excluded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TxtFields<'a> {
    pub(crate) fields: Vec<&'a str>,
    /// WSP between the version and the first ";".
    pub(crate) space_after_version: bool,
    /// WSP at the end of the record that is not part of a `field-delim`.
    pub(crate) trailing_whitespace: bool,
}

/// Splits `record = version 1*(field-delim field) [field-delim]`, checking the
/// character set. Fields are returned without the surrounding WSP.
pub(crate) fn split_txt<'a>(txt: &'a str, version: &str) -> Result<TxtFields<'a>, TxtSplitError> {
    for (index, ch) in txt.char_indices() {
        if !ch.is_ascii() {
            return Err(TxtSplitError::NotAscii { index, ch });
        }
        let byte = ch as u8;
        if (byte < 0x20 && byte != b'\t') || byte == 0x7F {
            return Err(TxtSplitError::Control { index, byte });
        }
    }
    let Some(rest) = txt.strip_prefix(version) else {
        return Err(TxtSplitError::MissingVersion);
    };
    if !(rest.is_empty() || rest.starts_with(';') || rest.starts_with(is_wsp)) {
        return Err(TxtSplitError::MissingVersion);
    }
    let space_after_version = rest.starts_with(is_wsp);
    let mut parts = rest.split(';');
    let head = parts.next().unwrap_or("");
    let rest_parts: Vec<&str> = parts.collect();
    if !trim_wsp(head).is_empty() {
        return Err(TxtSplitError::MissingDelimiter { text: trim_wsp(head).to_owned() });
    }
    let mut trailing_whitespace = rest_parts.is_empty() && !head.is_empty();
    let mut fields = Vec::with_capacity(rest_parts.len());
    let last = rest_parts.len().saturating_sub(1);
    for (i, part) in rest_parts.iter().enumerate() {
        let field = trim_wsp(part);
        if field.is_empty() {
            if i == last {
                continue;
            }
            return Err(TxtSplitError::EmptyField { index: i + 1 });
        }
        if i == last && part.ends_with(is_wsp) {
            trailing_whitespace = true;
        }
        fields.push(field);
    }
    Ok(TxtFields { fields, space_after_version, trailing_whitespace })
}

/// Splits `name "=" value`; `None` if there is no "=".
pub(crate) fn split_kv(field: &str) -> Option<(&str, &str)> {
    field.split_once('=')
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::type_complexity)]
    use super::*;

    #[test]
    fn ext_name_boundaries() {
        assert!(is_ext_name("a"));
        assert!(is_ext_name(&format!("a{}", "b".repeat(31))));
        assert!(!is_ext_name(&format!("a{}", "b".repeat(32))));
        assert!(!is_ext_name("_a"));
        assert!(!is_ext_name(""));
        assert!(is_ext_name("a_b-c.d"));
        assert!(!is_ext_name("a b"));
    }

    #[test]
    fn txt_ext_value() {
        assert!(is_txt_ext_value("abc!:<>~"));
        assert!(!is_txt_ext_value(""));
        assert!(!is_txt_ext_value("a=b"));
        assert!(!is_txt_ext_value("a;b"));
        assert!(!is_txt_ext_value("a b"));
    }

    #[test]
    fn split_cases() {
        let f = split_txt("v=X; a=b;c=d ;", "v=X").unwrap();
        assert_eq!(f.fields, vec!["a=b", "c=d"]);
        assert!(!f.trailing_whitespace);
        assert!(!f.space_after_version);
        let f = split_txt("v=X ;a=b ", "v=X").unwrap();
        assert!(f.space_after_version);
        assert!(f.trailing_whitespace);
        assert_eq!(split_txt("v=X;;a=b", "v=X"), Err(TxtSplitError::EmptyField { index: 1 }));
        assert_eq!(split_txt("v=Xa", "v=X"), Err(TxtSplitError::MissingVersion));
        assert!(matches!(split_txt("v=X a=b", "v=X"), Err(TxtSplitError::MissingDelimiter { .. })));
        assert!(split_txt("v=X", "v=X").unwrap().fields.is_empty());
    }
}
