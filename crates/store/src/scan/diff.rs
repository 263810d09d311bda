//! Classifying how a domain changed between two scan runs.

use serde::{Deserialize, Serialize};

use super::{Category, Grade};

/// How a domain changed between two runs (see [`super::ScanStore::diff`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "change")]
pub enum Change {
    /// Only in the second run.
    Added,
    /// Only in the first run.
    Removed,
    /// No MTA-STS (or a TXT record without a policy) before, a valid policy after.
    Adopted,
    /// A valid `testing`/`enforce` policy before, broken or gone after; or the grade got worse
    /// with new error codes.
    Broke,
    /// Errors before and none after, or an invalid policy / TXT without policy became valid.
    Fixed,
    /// Valid policies in both runs with different modes.
    ModeChanged {
        /// Mode in the first run.
        from: String,
        /// Mode in the second run.
        to: String,
    },
    /// Some other change of category, grade or error codes.
    Other,
}

impl std::fmt::Display for Change {
    /// In words, for `scan diff`: `adopted MTA-STS`, `mode testing -> enforce`, ….
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Added => f.write_str("new in the second run"),
            Self::Removed => f.write_str("only in the first run"),
            Self::Adopted => f.write_str("adopted MTA-STS"),
            Self::Broke => f.write_str("broke"),
            Self::Fixed => f.write_str("fixed"),
            Self::ModeChanged { from, to } => write!(f, "mode {from} -> {to}"),
            Self::Other => f.write_str("changed"),
        }
    }
}

impl Change {
    /// A short kebab-case name (`added`, `mode-changed`, …).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Added => "added",
            Self::Removed => "removed",
            Self::Adopted => "adopted",
            Self::Broke => "broke",
            Self::Fixed => "fixed",
            Self::ModeChanged { .. } => "mode-changed",
            Self::Other => "other",
        }
    }
}

/// One domain that differs between two runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffRow {
    /// The domain.
    pub domain: String,
    /// What kind of change.
    pub change: Change,
    /// Category and grade in the first run (`None` for [`Change::Added`]).
    pub before: Option<(Category, Grade)>,
    /// Category and grade in the second run (`None` for [`Change::Removed`]).
    pub after: Option<(Category, Grade)>,
}

/// One side of a diff row as stored.
#[derive(Clone, Debug)]
pub(crate) struct Side {
    pub(crate) category: Category,
    pub(crate) grade: Grade,
    pub(crate) mode: Option<String>,
    pub(crate) errors: Vec<String>,
}

fn valid(c: Category) -> bool {
    matches!(c, Category::None | Category::Testing | Category::Enforce)
}

/// Rank of a grade, `None` for "not checked" (not comparable).
fn rank(g: Grade) -> Option<u8> {
    match g {
        Grade::A => Some(0),
        Grade::B => Some(1),
        Grade::C => Some(2),
        Grade::D => Some(3),
        Grade::F => Some(4),
        Grade::Unknown => None,
    }
}

fn mode_of(s: &Side) -> String {
    s.mode.clone().unwrap_or_else(|| s.category.as_str().to_owned())
}

/// Classifies a change. Rules are tried in order: Added/Removed, Adopted, Broke,
/// ModeChanged, Fixed, Other.
pub(crate) fn classify(before: Option<&Side>, after: Option<&Side>) -> Option<Change> {
    use Category as C;
    let (b, a) = match (before, after) {
        (None, None) => return None,
        (None, Some(_)) => return Some(Change::Added),
        (Some(_), None) => return Some(Change::Removed),
        (Some(b), Some(a)) => (b, a),
    };
    if b.category == a.category && b.grade == a.grade && b.errors == a.errors {
        return None;
    }
    if matches!(b.category, C::NoMtaSts | C::TxtWithoutPolicy | C::PolicyWithoutTxt)
        && valid(a.category)
    {
        return Some(Change::Adopted);
    }
    if matches!(b.category, C::Testing | C::Enforce)
        && matches!(
            a.category,
            C::InvalidPolicy | C::TxtWithoutPolicy | C::PolicyWithoutTxt | C::NoMtaSts
        )
    {
        return Some(Change::Broke);
    }
    let worse = matches!((rank(b.grade), rank(a.grade)), (Some(rb), Some(ra)) if ra > rb);
    if worse && a.errors.iter().any(|e| !b.errors.contains(e)) {
        return Some(Change::Broke);
    }
    if valid(b.category) && valid(a.category) {
        let (from, to) = (mode_of(b), mode_of(a));
        if from != to {
            return Some(Change::ModeChanged { from, to });
        }
    }
    if matches!(b.category, C::InvalidPolicy | C::TxtWithoutPolicy) && valid(a.category) {
        return Some(Change::Fixed);
    }
    if !b.errors.is_empty()
        && a.errors.is_empty()
        && !matches!(a.category, C::CouldNotCheck | C::InvalidName | C::DoesNotExist)
    {
        return Some(Change::Fixed);
    }
    Some(Change::Other)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(category: Category, grade: Grade, errors: &[&str]) -> Side {
        Side {
            category,
            grade,
            mode: None,
            errors: errors.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn rules() {
        use Category as C;
        let c = |b: &Side, a: &Side| classify(Some(b), Some(a));
        assert_eq!(
            c(&side(C::NoMtaSts, Grade::F, &[]), &side(C::Testing, Grade::B, &[])),
            Some(Change::Adopted)
        );
        assert_eq!(
            c(&side(C::Enforce, Grade::A, &[]), &side(C::InvalidPolicy, Grade::D, &["x"])),
            Some(Change::Broke)
        );
        assert_eq!(
            c(&side(C::Enforce, Grade::A, &[]), &side(C::Enforce, Grade::C, &["mx"])),
            Some(Change::Broke)
        );
        assert_eq!(
            c(&side(C::Testing, Grade::B, &[]), &side(C::Enforce, Grade::A, &[])),
            Some(Change::ModeChanged { from: "testing".into(), to: "enforce".into() })
        );
        assert_eq!(
            c(&side(C::Enforce, Grade::C, &["mx"]), &side(C::Enforce, Grade::A, &[])),
            Some(Change::Fixed)
        );
        assert_eq!(
            c(&side(C::InvalidPolicy, Grade::D, &[]), &side(C::Enforce, Grade::A, &[])),
            Some(Change::Fixed)
        );
        assert_eq!(
            c(&side(C::Enforce, Grade::A, &[]), &side(C::CouldNotCheck, Grade::Unknown, &["dns"])),
            Some(Change::Other)
        );
        assert_eq!(c(&side(C::Enforce, Grade::A, &[]), &side(C::Enforce, Grade::A, &[])), None);
        assert_eq!(classify(None, Some(&side(C::Enforce, Grade::A, &[]))), Some(Change::Added));
        assert_eq!(classify(Some(&side(C::Enforce, Grade::A, &[])), None), Some(Change::Removed));
    }
}
