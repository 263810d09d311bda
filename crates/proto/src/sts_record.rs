//! The MTA-STS TXT record, RFC 8461 §3.1.
//!
//! ```text
//! sts-text-record = sts-version 1*(sts-field-delim sts-field) [sts-field-delim]
//! sts-field       = sts-id / sts-extension
//! sts-field-delim = *WSP ";" *WSP
//! sts-version     = %s"v=STSv1"
//! sts-id          = %s"id=" 1*32(ALPHA / DIGIT)
//! sts-extension   = sts-ext-name "=" sts-ext-value
//! sts-ext-name    = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
//! sts-ext-value   = 1*(%x21-3A / %x3C / %x3E-7E)
//! ```
//!
//! §3.1: "If multiple TXT records for `_mta-sts` are returned by the
//! resolver, records that do not begin with `v=STSv1;` are discarded. If the
//! number of resulting records is not one, or if the resulting record is
//! syntactically invalid, senders MUST assume the recipient domain does not
//! have an available MTA-STS Policy and skip the remaining steps of policy
//! discovery." A TXT resource record made of several character-strings is
//! read with the strings concatenated without spaces (as in RFC 7208 §3.3).
//! The DNS layer does that concatenation; [`select_sts_record`] takes one
//! already-joined string per TXT resource record.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::diag::{Parsed, Warning};
use crate::syntax::{self, TxtSplitError};

/// The version literal that every MTA-STS TXT record begins with (RFC 8461 §3.1).
pub const STS_VERSION: &str = "v=STSv1";

/// Longest policy id: `sts-id = %s"id=" 1*32(ALPHA / DIGIT)` (RFC 8461 §3.1).
pub const POLICY_ID_MAX_LEN: usize = 32;

/// Longest extension name: 32 characters (RFC 8461 §3.1 `sts-ext-name`).
pub const EXT_NAME_MAX_LEN: usize = syntax::EXT_NAME_MAX_LEN;

/// Why a TXT record is not a valid MTA-STS record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StsRecordError {
    /// A byte outside US-ASCII.
    #[error("RFC 8461 §3.1: the record must be US-ASCII, found {ch:?} at byte {index}")]
    NotAscii {
        /// Byte offset.
        index: usize,
        /// The character.
        ch: char,
    },
    /// A control character other than HTAB.
    #[error("RFC 8461 §3.1: control character 0x{byte:02X} at byte {index}")]
    ControlCharacter {
        /// Byte offset.
        index: usize,
        /// The byte.
        byte: u8,
    },
    /// The record does not begin with `v=STSv1` followed by ";", WSP or end.
    #[error("RFC 8461 §3.1: the record must begin with \"v=STSv1\" (case-sensitive)")]
    MissingVersion,
    /// Text follows the version without a ";".
    #[error("RFC 8461 §3.1: fields must be separated by \";\", found {text:?} after \"v=STSv1\"")]
    MissingDelimiter {
        /// The text after the version.
        text: String,
    },
    /// `;;` — an empty field.
    #[error("RFC 8461 §3.1: field {index} is empty (\";;\")")]
    EmptyField {
        /// 1-based index of the field after the version.
        index: usize,
    },
    /// A field without "=".
    #[error("RFC 8461 §3.1: field {field:?} has no \"=\"")]
    MissingEquals {
        /// The field text.
        field: String,
    },
    /// Whitespace before or after "=".
    #[error("RFC 8461 §3.1: no whitespace is allowed around \"=\" in {field:?}")]
    SpaceAroundEquals {
        /// The field text.
        field: String,
    },
    /// No `id` field.
    #[error("RFC 8461 §3.1: the record must contain an \"id\" field")]
    MissingId,
    /// An `id` that is not 1 to 32 letters or digits.
    #[error(
        "RFC 8461 §3.1: id must be 1 to {POLICY_ID_MAX_LEN} letters or digits, found {value:?}"
    )]
    InvalidId {
        /// The value found.
        value: String,
    },
    /// An extension name that breaks `sts-ext-name`.
    #[error(
        "RFC 8461 §3.1: extension name {name:?} must be a letter or digit followed by at most 31 letters, digits, \"_\", \"-\" or \".\""
    )]
    InvalidExtensionName {
        /// The name found.
        name: String,
    },
    /// An extension value that breaks `sts-ext-value`.
    #[error(
        "RFC 8461 §3.1: value of extension {name:?} must be 1 or more visible characters other than \"=\" and \";\", found {value:?}"
    )]
    InvalidExtensionValue {
        /// The extension name.
        name: String,
        /// The value found.
        value: String,
    },
}

/// An MTA-STS policy id: `1*32(ALPHA / DIGIT)` (RFC 8461 §3.1).
///
/// "id: A short string used to track policy updates. This string MUST
/// uniquely identify a given instance of a policy, such that senders can
/// determine when the policy has been updated by comparing to the "id" of a
/// previously seen policy."
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PolicyId(String);

impl PolicyId {
    /// Validates an id.
    pub fn new(s: &str) -> Result<Self, StsRecordError> {
        if s.is_empty()
            || s.len() > POLICY_ID_MAX_LEN
            || !s.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(StsRecordError::InvalidId { value: s.to_owned() });
        }
        Ok(Self(s.to_owned()))
    }

    /// The id text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// An id the caller built from characters known to be valid.
    pub(crate) fn from_valid(s: String) -> Self {
        debug_assert!(Self::new(&s).is_ok(), "{s:?} is not a valid id");
        Self(s)
    }
}

impl FromStr for PolicyId {
    type Err = StsRecordError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl fmt::Display for PolicyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for PolicyId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for PolicyId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Self::new(&s).map_err(serde::de::Error::custom)
    }
}

/// An extension field of a TXT record (RFC 8461 §3.1, RFC 8460 §3):
/// `name "=" value`. Unknown fields are kept so that tools can show them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Extension {
    name: String,
    value: String,
}

impl Extension {
    /// Validates `sts-ext-name` and `sts-ext-value`.
    pub fn new(name: &str, value: &str) -> Result<Self, StsRecordError> {
        if !syntax::is_ext_name(name) {
            return Err(StsRecordError::InvalidExtensionName { name: name.to_owned() });
        }
        if !syntax::is_txt_ext_value(value) {
            return Err(StsRecordError::InvalidExtensionValue {
                name: name.to_owned(),
                value: value.to_owned(),
            });
        }
        Ok(Self { name: name.to_owned(), value: value.to_owned() })
    }

    /// Builds an extension whose name and value the caller has already
    /// checked with the same grammar (RFC 8460 §3 shares it).
    pub(crate) fn from_checked(name: &str, value: &str) -> Self {
        Self { name: name.to_owned(), value: value.to_owned() }
    }

    /// The field name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The field value.
    pub fn value(&self) -> &str {
        &self.value
    }
}

impl fmt::Display for Extension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.name, self.value)
    }
}

/// A parsed MTA-STS TXT record.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StsRecord {
    id: PolicyId,
    extensions: Vec<Extension>,
}

impl StsRecord {
    /// A record with this id and no extensions.
    pub fn new(id: PolicyId) -> Self {
        Self { id, extensions: Vec::new() }
    }

    /// Adds extension fields (kept in the given order).
    #[must_use]
    pub fn with_extensions(mut self, extensions: Vec<Extension>) -> Self {
        self.extensions = extensions;
        self
    }

    /// The policy id.
    pub fn id(&self) -> &PolicyId {
        &self.id
    }

    /// Extension fields, in record order. RFC 8461 §3.1 defines none; they
    /// are ignored for policy discovery.
    pub fn extensions(&self) -> &[Extension] {
        &self.extensions
    }

    /// Parses one TXT record (its strings already joined) with the strict
    /// ABNF of RFC 8461 §3.1.
    ///
    /// Warnings: `sts-duplicate-id` (a second `id`; the first is kept),
    /// `sts-space-after-version` (WSP before the first ";": valid ABNF but
    /// the §3.1 prose discards records that do not begin with `v=STSv1;`),
    /// `sts-trailing-whitespace` (WSP after the last field with no ";"
    /// following — not allowed by the ABNF, tolerated),
    /// `sts-field-wrong-case` (an extension named like `ID`: field names are
    /// case-sensitive, so it is not the id).
    pub fn parse(txt: &str) -> Result<Parsed<Self>, StsRecordError> {
        let split = syntax::split_txt(txt, STS_VERSION).map_err(|e| match e {
            TxtSplitError::NotAscii { index, ch } => StsRecordError::NotAscii { index, ch },
            TxtSplitError::Control { index, byte } => {
                StsRecordError::ControlCharacter { index, byte }
            }
            TxtSplitError::MissingVersion => StsRecordError::MissingVersion,
            TxtSplitError::MissingDelimiter { text } => StsRecordError::MissingDelimiter { text },
            TxtSplitError::EmptyField { index } => StsRecordError::EmptyField { index },
        })?;
        let mut warnings = Vec::new();
        if split.space_after_version {
            warnings.push(Warning::new(
                "sts-space-after-version",
                None,
                "RFC 8461 §3.1: whitespace between \"v=STSv1\" and \";\" is allowed by the ABNF, but the prose says records that do not begin with \"v=STSv1;\" are discarded, so some senders ignore this record",
            ));
        }
        if split.trailing_whitespace {
            warnings.push(Warning::new(
                "sts-trailing-whitespace",
                None,
                "RFC 8461 §3.1: whitespace at the end of the record is only allowed around a \";\" delimiter",
            ));
        }
        let mut id: Option<PolicyId> = None;
        let mut extensions = Vec::new();
        for field in split.fields {
            let Some((name, value)) = syntax::split_kv(field) else {
                return Err(StsRecordError::MissingEquals { field: field.to_owned() });
            };
            if name.ends_with(syntax::is_wsp) || value.starts_with(syntax::is_wsp) {
                return Err(StsRecordError::SpaceAroundEquals { field: field.to_owned() });
            }
            if name == "id" {
                // A second `id` whose value is no id is an extension field by the ABNF
                // (`sts-ext-name` admits "id"), not a broken id.
                let parsed = match (&id, PolicyId::new(value)) {
                    (_, Ok(parsed)) => parsed,
                    (None, Err(e)) => return Err(e),
                    (Some(first), Err(_)) => {
                        warnings.push(Warning::new(
                            "sts-duplicate-id",
                            None,
                            format!(
                                "RFC 8461 §3.1: the record has a second \"id\" ({value:?}, not a valid id, so read as an extension field); the first ({first}) is used"
                            ),
                        ));
                        extensions.push(Extension::new(name, value)?);
                        continue;
                    }
                };
                if let Some(first) = &id {
                    warnings.push(Warning::new(
                        "sts-duplicate-id",
                        None,
                        format!(
                            "RFC 8461 §3.1: the record has more than one \"id\"; the first ({first}) is used and {parsed} is ignored"
                        ),
                    ));
                } else {
                    id = Some(parsed);
                }
            } else {
                let ext = Extension::new(name, value)?;
                if (name != "v" && name.eq_ignore_ascii_case("v"))
                    || name.eq_ignore_ascii_case("id")
                {
                    warnings.push(Warning::new(
                        "sts-field-wrong-case",
                        None,
                        format!(
                            "RFC 8461 §3.1: field names are case-sensitive; {name:?} is an unknown extension, not \"{}\"",
                            name.to_ascii_lowercase()
                        ),
                    ));
                }
                extensions.push(ext);
            }
        }
        let id = id.ok_or(StsRecordError::MissingId)?;
        Ok(Parsed { value: Self { id, extensions }, warnings })
    }
}

impl fmt::Display for StsRecord {
    /// Canonical form: `v=STSv1; id=<id>;` followed by `name=value;` for
    /// each extension.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{STS_VERSION}; id={};", self.id)?;
        for ext in &self.extensions {
            write!(f, " {ext};")?;
        }
        Ok(())
    }
}

impl FromStr for StsRecord {
    type Err = StsRecordError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s).map(Parsed::into_value)
    }
}

/// The outcome of [`select_sts_record`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StsDiscovery {
    /// The one MTA-STS record, parsed.
    pub record: Parsed<StsRecord>,
    /// Its text.
    pub raw: String,
    /// The other TXT records at the name, which do not begin with `v=STSv1`.
    pub discarded: Vec<String>,
}

/// Why no MTA-STS record could be selected (RFC 8461 §3.1). In every case
/// "senders MUST assume the recipient domain does not have an available
/// MTA-STS Policy".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StsDiscoveryError {
    /// No TXT record begins with `v=STSv1`.
    #[error("RFC 8461 §3.1: no TXT record begins with \"v=STSv1\" ({} other record(s) discarded)", discarded.len())]
    NoRecord {
        /// The records that were discarded.
        discarded: Vec<String>,
    },
    /// More than one record begins with `v=STSv1`.
    #[error("RFC 8461 §3.1: {} TXT records begin with \"v=STSv1\"; exactly one is required", records.len())]
    Multiple {
        /// The candidate records.
        records: Vec<String>,
    },
    /// The one candidate is syntactically invalid.
    #[error("invalid MTA-STS record {raw:?}: {error}")]
    Invalid {
        /// The record text.
        raw: String,
        /// What is wrong with it.
        #[source]
        error: StsRecordError,
    },
}

/// Whether a TXT record is an MTA-STS candidate. RFC 8461 §3.1: "Records that do not begin
/// with "v=STSv1;" are discarded." The test is made before records are counted, so
/// `{"v=STSv1", "v=STSv1; id=1"}` is one record, not two: `v=STSv1` alone (or `v=STSv1 ;`)
/// does not begin with `v=STSv1;` and is discarded.
pub fn is_sts_candidate(txt: &str) -> bool {
    txt.strip_prefix(STS_VERSION).is_some_and(|rest| rest.starts_with(';'))
}

/// Selects and parses the MTA-STS record among the TXT records found at
/// `_mta-sts.<domain>` (RFC 8461 §3.1). Each input string is one TXT
/// resource record with its character-strings already joined without spaces.
pub fn select_sts_record(txt_records: &[String]) -> Result<StsDiscovery, StsDiscoveryError> {
    let (candidates, discarded): (Vec<&String>, Vec<&String>) =
        txt_records.iter().partition(|r| is_sts_candidate(r));
    let discarded: Vec<String> = discarded.into_iter().cloned().collect();
    match candidates.as_slice() {
        [] => Err(StsDiscoveryError::NoRecord { discarded }),
        [one] => match StsRecord::parse(one) {
            Ok(record) => Ok(StsDiscovery { record, raw: (*one).clone(), discarded }),
            Err(error) => Err(StsDiscoveryError::Invalid { raw: (*one).clone(), error }),
        },
        many => Err(StsDiscoveryError::Multiple {
            records: many.iter().map(|s| (*s).clone()).collect(),
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::type_complexity)]
    use super::*;

    fn ok(txt: &str) -> Parsed<StsRecord> {
        StsRecord::parse(txt).unwrap_or_else(|e| panic!("{txt:?}: {e}"))
    }

    #[test]
    fn valid_records() {
        for (txt, id, exts) in [
            ("v=STSv1; id=20160831085700Z;", "20160831085700Z", 0),
            ("v=STSv1;id=abc", "abc", 0),
            ("v=STSv1; id=abc", "abc", 0),
            ("v=STSv1;\tid=abc\t;\t", "abc", 0),
            ("v=STSv1; ext=foo; id=A1", "A1", 1),
            ("v=STSv1; id=a; x.y-z_1=a!b:c<d>e~", "a", 1),
        ] {
            let p = ok(txt);
            assert_eq!(p.value.id().as_str(), id, "{txt}");
            assert_eq!(p.value.extensions().len(), exts, "{txt}");
            assert!(p.is_clean(), "{txt}: {:?}", p.warnings);
        }
    }

    #[test]
    fn id_boundaries() {
        let id32 = "a".repeat(32);
        let id33 = "a".repeat(33);
        assert_eq!(ok(&format!("v=STSv1; id={id32}")).value.id().as_str(), id32);
        assert_eq!(
            StsRecord::parse(&format!("v=STSv1; id={id33}")),
            Err(StsRecordError::InvalidId { value: id33 })
        );
    }

    #[test]
    fn ext_name_boundaries() {
        let n32 = format!("a{}", "b".repeat(31));
        let n33 = format!("a{}", "b".repeat(32));
        assert!(StsRecord::parse(&format!("v=STSv1; id=a; {n32}=v")).is_ok());
        assert_eq!(
            StsRecord::parse(&format!("v=STSv1; id=a; {n33}=v")),
            Err(StsRecordError::InvalidExtensionName { name: n33 })
        );
    }

    #[test]
    fn errors() {
        use StsRecordError as E;
        let cases: Vec<(&str, E)> = vec![
            ("", E::MissingVersion),
            ("v=STSv2; id=a", E::MissingVersion),
            ("v=stsv1; id=a", E::MissingVersion),
            (" v=STSv1; id=a", E::MissingVersion),
            ("id=a; v=STSv1", E::MissingVersion),
            ("v=STSv1id=a", E::MissingVersion),
            ("v=STSv1", E::MissingId),
            ("v=STSv1;", E::MissingId),
            ("v=STSv1; ext=1", E::MissingId),
            ("v=STSv1 id=a", E::MissingDelimiter { text: "id=a".into() }),
            ("v=STSv1;;id=a", E::EmptyField { index: 1 }),
            ("v=STSv1; id=a;; ", E::EmptyField { index: 2 }),
            ("v=STSv1; id", E::MissingEquals { field: "id".into() }),
            ("v=STSv1; id =a", E::SpaceAroundEquals { field: "id =a".into() }),
            ("v=STSv1; id= a", E::SpaceAroundEquals { field: "id= a".into() }),
            ("v=STSv1; id=", E::InvalidId { value: "".into() }),
            ("v=STSv1; id=2024-01-01", E::InvalidId { value: "2024-01-01".into() }),
            ("v=STSv1; id=a b", E::InvalidId { value: "a b".into() }),
            ("v=STSv1; id=a; _x=1", E::InvalidExtensionName { name: "_x".into() }),
            ("v=STSv1; id=a; x=", E::InvalidExtensionValue { name: "x".into(), value: "".into() }),
            (
                "v=STSv1; id=a; x=a=b",
                E::InvalidExtensionValue { name: "x".into(), value: "a=b".into() },
            ),
            ("v=STSv1; id=é", E::NotAscii { index: 12, ch: 'é' }),
            ("v=STSv1; id=a\n", E::ControlCharacter { index: 13, byte: b'\n' }),
            ("v=STSv1; id=a\0", E::ControlCharacter { index: 13, byte: 0 }),
        ];
        for (txt, expected) in cases {
            let err = StsRecord::parse(txt).unwrap_err();
            assert_eq!(err, expected, "{txt:?}");
            assert!(err.to_string().starts_with("RFC 8461 §3.1:"), "{err}");
        }
        assert_eq!(
            StsRecord::parse("v=STSv1; id=2024-01-01").unwrap_err().to_string(),
            "RFC 8461 §3.1: id must be 1 to 32 letters or digits, found \"2024-01-01\""
        );
    }

    #[test]
    fn warnings() {
        let p = ok("v=STSv1; id=first; id=second");
        assert_eq!(p.value.id().as_str(), "first");
        assert!(p.has_warning("sts-duplicate-id"));
        assert!(ok("v=STSv1 ; id=a").has_warning("sts-space-after-version"));
        assert!(ok("v=STSv1; id=a ").has_warning("sts-trailing-whitespace"));
        assert!(!ok("v=STSv1; id=a; ").has_warning("sts-trailing-whitespace"));
        assert!(ok("v=STSv1; id=a; v=STSv1").is_clean());
        let p = ok("v=STSv1; id=a; ID=b");
        assert!(p.has_warning("sts-field-wrong-case"));
        assert_eq!(p.value.id().as_str(), "a");
    }

    #[test]
    fn display_and_round_trip() {
        let r = ok("v=STSv1;ext=1;id=abc").value;
        assert_eq!(r.to_string(), "v=STSv1; id=abc; ext=1;");
        assert_eq!(r.to_string().parse::<StsRecord>().unwrap(), r);
        let r = StsRecord::new(PolicyId::new("x1").unwrap());
        assert_eq!(r.to_string(), "v=STSv1; id=x1;");
    }

    fn strs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn select() {
        // None at all.
        assert_eq!(select_sts_record(&[]), Err(StsDiscoveryError::NoRecord { discarded: vec![] }));
        // Only unrelated records.
        let recs = strs(&["v=spf1 -all", "google-site-verification=x", "v=STSv10; id=a"]);
        assert_eq!(
            select_sts_record(&recs),
            Err(StsDiscoveryError::NoRecord { discarded: recs.clone() })
        );
        // One among unrelated ones.
        let recs = strs(&["v=spf1 -all", "v=STSv1; id=abc"]);
        let d = select_sts_record(&recs).unwrap();
        assert_eq!(d.record.value.id().as_str(), "abc");
        assert_eq!(d.raw, "v=STSv1; id=abc");
        assert_eq!(d.discarded, strs(&["v=spf1 -all"]));
        // Two candidates, even if identical.
        let recs = strs(&["v=STSv1; id=a", "v=STSv1; id=a"]);
        assert!(matches!(
            select_sts_record(&recs),
            Err(StsDiscoveryError::Multiple { records }) if records.len() == 2
        ));
        // A candidate without an id is invalid, not absent.
        let recs = strs(&["v=STSv1;"]);
        assert_eq!(
            select_sts_record(&recs),
            Err(StsDiscoveryError::Invalid {
                raw: "v=STSv1;".into(),
                error: StsRecordError::MissingId
            })
        );
        // Not beginning with "v=STSv1;": discarded before counting.
        let recs = strs(&["v=STSv1 ;id=a"]);
        assert!(matches!(select_sts_record(&recs), Err(StsDiscoveryError::NoRecord { .. })));
    }

    /// Issue 15, defect 3: `{"v=STSv1", "v=STSv1; id=20240101"}` is one valid record.
    #[test]
    fn defect_3_records_not_beginning_with_version_semicolon_are_discarded_before_counting() {
        let recs = strs(&["v=STSv1", "v=STSv1; id=20240101"]);
        let d = select_sts_record(&recs).unwrap();
        assert_eq!(d.record.value.id().as_str(), "20240101");
        assert_eq!(d.discarded, strs(&["v=STSv1"]));
        let recs = strs(&["v=STSv1 ; id=a", "v=STSv1;id=b", "v=STSv1\tid=c"]);
        assert_eq!(select_sts_record(&recs).unwrap().record.value.id().as_str(), "b");
    }

    /// Issue 15, defect 3: a second `id=` that is not `1*32(ALPHA / DIGIT)` is an extension.
    #[test]
    fn defect_3_second_invalid_id_is_an_extension() {
        let p = ok("v=STSv1; id=abc; id=not-an-id!");
        assert_eq!(p.value.id().as_str(), "abc");
        assert_eq!(p.value.extensions().len(), 1);
        assert!(p.has_warning("sts-duplicate-id"));
        // The first id must still be valid.
        assert!(StsRecord::parse("v=STSv1; id=not-an-id!; id=abc").is_err());
        // A second valid id is ignored with a warning, as before.
        let p = ok("v=STSv1; id=abc; id=def");
        assert_eq!(p.value.id().as_str(), "abc");
        assert!(p.value.extensions().is_empty());
    }

    #[test]
    fn split_txt_strings_joined_without_spaces() {
        // A record published as two strings "v=STSv1; id=2019" "0101" is
        // joined by the DNS layer into one string with no space.
        let parts = ["v=STSv1; id=2019", "0101"];
        let joined = parts.concat();
        let d = select_sts_record(&[joined]).unwrap();
        assert_eq!(d.record.value.id().as_str(), "20190101");
    }
}
