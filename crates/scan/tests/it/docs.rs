//! `docs/scan-categories.md` stays equal to the categories and grades in the code.

use mtasts_scan::row::{GRADE_MEANINGS, categories_markdown};
use mtasts_store::{Category, Grade};

#[test]
fn categories_document_matches_the_code() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/scan-categories.md");
    let want = categories_markdown();
    if std::env::var_os("MTASTS_UPDATE_DOCS").is_some() {
        std::fs::write(&path, &want).unwrap();
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "docs/scan-categories.md is out of date: run MTASTS_UPDATE_DOCS=1 cargo test -p mtasts-scan"
    );
    for c in Category::ALL {
        assert!(want.contains(&format!("`{}`", c.as_str())), "{c:?} undocumented");
    }
    for g in [Grade::A, Grade::B, Grade::C, Grade::D, Grade::F, Grade::Unknown] {
        assert!(GRADE_MEANINGS.iter().any(|(x, _)| *x == g), "{g:?} undocumented");
    }
}
