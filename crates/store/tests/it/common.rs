use mtasts_store::{Category, Grade, ResultRow};

pub use mtasts_store::testing::TestDb;

/// Defines `sqlite` and `postgres` tests running `$f(&TestDb)`.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn sqlite() {
                    let db = $crate::common::TestDb::sqlite();
                    super::$name(&db).await;
                    db.cleanup().await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn postgres() {
                    let Some(db) = $crate::common::TestDb::postgres(stringify!($name)).await else {
                        return;
                    };
                    super::$name(&db).await;
                    db.cleanup().await;
                }
            }
        )*
    };
}
pub(crate) use both_backends;

pub fn domains(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("d{i:05}.{prefix}.example")).collect()
}

/// A plain result row for `domain`.
pub fn row(domain: &str, category: Category, grade: Grade) -> ResultRow {
    let valid = matches!(category, Category::None | Category::Testing | Category::Enforce);
    ResultRow {
        domain: domain.to_owned(),
        category,
        grade,
        txt_present: valid,
        policy_valid: valid,
        mode: valid.then(|| category.as_str().to_owned()),
        max_age: valid.then_some(604_800),
        mx_covered: valid.then_some(true),
        mx_tls_ok: None,
        tlsrpt_present: false,
        tlsrpt_valid: false,
        provider: None,
        error_codes: Vec::new(),
        warning_codes: Vec::new(),
        report_json: format!("{{\"domain\":\"{domain}\"}}"),
        elapsed_ms: 12,
    }
}

pub fn with_errors(mut r: ResultRow, errors: &[&str]) -> ResultRow {
    r.error_codes = errors.iter().map(|s| (*s).to_owned()).collect();
    r
}
