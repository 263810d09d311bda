//! The HTML scan report in a real browser: Debian's `chromium`, headless. Takes a screenshot
//! (kept at `$CARGO_TARGET_TMPDIR/scan-report.png` for people to look at) and dumps the DOM
//! after the page's script ran to check the table, sorting and filtering.
//!
//! Without chromium the test is skipped, unless `CI` is set: then it fails
//! (`mtasts_testkit::browser`).

use std::path::PathBuf;

use mtasts_scan::html::{ReportMeta, render};
use mtasts_scan::summary::SummaryBuilder;
use mtasts_store::{Category, Grade, ResultRow};
use mtasts_testkit::browser::{Browser, file_url};

const TITLE: &str = "MTA-STS scan of top-domains.txt";

/// One kind of domain: category, grade, mode, max_age, MX covered, MX TLS ok, TLS-RPT
/// (present, valid), errors, warnings.
type Profile = (
    Category,
    Grade,
    Option<&'static str>,
    Option<u32>,
    Option<bool>,
    Option<bool>,
    (bool, bool),
    &'static [&'static str],
    &'static [&'static str],
);

const PROFILES: [Profile; 16] = [
    (
        Category::Enforce,
        Grade::A,
        Some("enforce"),
        Some(1_209_600),
        Some(true),
        Some(true),
        (true, true),
        &[],
        &[],
    ),
    (
        Category::NoMtaSts,
        Grade::F,
        None,
        None,
        None,
        Some(true),
        (false, false),
        &[],
        &["sts-not-deployed", "tlsrpt-missing"],
    ),
    (
        Category::Enforce,
        Grade::B,
        Some("enforce"),
        Some(604_800),
        Some(true),
        Some(true),
        (false, false),
        &[],
        &["tlsrpt-missing"],
    ),
    (
        Category::Testing,
        Grade::C,
        Some("testing"),
        Some(86_400),
        Some(false),
        Some(true),
        (true, true),
        &["mx-not-covered"],
        &[],
    ),
    (
        Category::NoMtaSts,
        Grade::F,
        None,
        None,
        None,
        Some(false),
        (false, false),
        &["mx-starttls-missing"],
        &["sts-not-deployed", "tlsrpt-missing"],
    ),
    (
        Category::Testing,
        Grade::B,
        Some("testing"),
        Some(604_800),
        Some(true),
        Some(true),
        (true, true),
        &[],
        &["mx-cert-expiring"],
    ),
    (
        Category::InvalidPolicy,
        Grade::D,
        None,
        None,
        None,
        Some(true),
        (true, false),
        &["policy-invalid", "tlsrpt-invalid"],
        &[],
    ),
    (
        Category::Enforce,
        Grade::C,
        Some("enforce"),
        Some(31_557_600),
        Some(true),
        Some(false),
        (true, true),
        &["mx-cert-expired"],
        &[],
    ),
    (
        Category::NoMtaSts,
        Grade::F,
        None,
        None,
        None,
        Some(true),
        (true, true),
        &[],
        &["sts-not-deployed"],
    ),
    (
        Category::TxtWithoutPolicy,
        Grade::D,
        None,
        None,
        None,
        Some(true),
        (false, false),
        &["policy-cert-wrong-name"],
        &["tlsrpt-missing"],
    ),
    (
        Category::None,
        Grade::C,
        Some("none"),
        Some(86_400),
        Some(true),
        Some(true),
        (true, true),
        &[],
        &["policy-mode-none", "policy-max-age-short"],
    ),
    (
        Category::Enforce,
        Grade::A,
        Some("enforce"),
        Some(2_592_000),
        Some(true),
        Some(true),
        (true, true),
        &[],
        &[],
    ),
    (
        Category::NoMtaSts,
        Grade::F,
        None,
        None,
        None,
        None,
        (false, false),
        &[],
        &["sts-not-deployed", "tlsrpt-missing"],
    ),
    (
        Category::Testing,
        Grade::C,
        Some("testing"),
        Some(604_800),
        Some(false),
        Some(false),
        (true, true),
        &["mx-not-covered", "mx-cert-wrong-name"],
        &[],
    ),
    (
        Category::TxtWithoutPolicy,
        Grade::D,
        None,
        None,
        None,
        Some(true),
        (true, true),
        &["policy-https-unreachable"],
        &[],
    ),
    (
        Category::CouldNotCheck,
        Grade::Unknown,
        None,
        None,
        None,
        None,
        (false, false),
        &["sts-txt-dns-error", "mx-dns-error"],
        &[],
    ),
];

const NAMES: [&str; 16] = [
    "acme-widgets",
    "northwind",
    "contoso",
    "fabrikam",
    "globex",
    "initech",
    "umbrella",
    "hooli",
    "stark-industries",
    "wayne-enterprises",
    "tyrell",
    "cyberdyne",
    "soylent",
    "wonka",
    "aperture",
    "black-mesa",
];
const TLDS: [&str; 4] = ["example", "example.org", "test", "example.net"];
const PROVIDERS: [&str; 6] =
    ["google.com", "outlook.com", "mimecast.com", "pphosted.com", "ovh.net", "self-hosted.example"];

fn rows() -> Vec<ResultRow> {
    let mut rows: Vec<ResultRow> =
        (0..64usize)
            .map(|i| {
                let (
                    category,
                    grade,
                    mode,
                    max_age,
                    mx_covered,
                    mx_tls_ok,
                    (tp, tv),
                    errors,
                    warnings,
                ) = PROFILES[i % 16];
                let valid =
                    matches!(category, Category::Enforce | Category::Testing | Category::None);
                ResultRow {
                    domain: format!(
                        "{}{}.{}",
                        NAMES[(i * 7) % 16],
                        if i >= 16 { format!("-{}", i / 16) } else { String::new() },
                        TLDS[i % 4]
                    ),
                    category,
                    grade,
                    txt_present: valid
                        || matches!(category, Category::InvalidPolicy | Category::TxtWithoutPolicy),
                    policy_valid: valid,
                    mode: mode.map(str::to_owned),
                    max_age,
                    mx_covered,
                    mx_tls_ok,
                    tlsrpt_present: tp,
                    tlsrpt_valid: tv,
                    provider: (category != Category::CouldNotCheck)
                        .then(|| PROVIDERS[(i * 5 + i / 3) % 6].to_owned()),
                    error_codes: errors.iter().map(|s| (*s).to_owned()).collect(),
                    warning_codes: warnings.iter().map(|s| (*s).to_owned()).collect(),
                    report_json: "{}".to_owned(),
                    elapsed_ms: 180 + (i as u64 * 379) % 2900,
                }
            })
            .collect();
    // Data from the wild: an input line that is not a domain and tries to be markup.
    rows.push(ResultRow {
        domain: "<script>document.title='pwned'</script><b>x</b>.example".to_owned(),
        category: Category::InvalidName,
        grade: Grade::Unknown,
        txt_present: false,
        policy_valid: false,
        mode: None,
        max_age: None,
        mx_covered: None,
        mx_tls_ok: None,
        tlsrpt_present: false,
        tlsrpt_valid: false,
        provider: None,
        error_codes: vec!["domain-invalid".to_owned()],
        warning_codes: vec![],
        report_json: "{}".to_owned(),
        elapsed_ms: 1,
    });
    rows
}

/// Every `<td class="num" …>` sort key (`data-v`) of the max_age column, in DOM order.
fn max_age_keys(dom: &str) -> Vec<String> {
    dom.split("<td class=\"")
        .skip(1)
        .filter(|cell| cell.starts_with("num\"") || cell.starts_with("na num\""))
        .map(|cell| {
            let v = cell.split("data-v=\"").nth(1).unwrap();
            v[..v.find('"').unwrap()].to_owned()
        })
        .collect()
}

/// The findings a problem domain with an uncovered MX gets, as the scan keeps them.
fn problem_json(domain: &str) -> String {
    use mtasts_check::lint::{LintOptions, lint};
    let d = mtasts_proto::DomainName::parse_ascii(domain).unwrap();
    let policy = format!("version: STSv1\nmode: enforce\nmx: mx1.{domain}\nmax_age: 604800\n");
    let options = LintOptions {
        domain: Some(d),
        mx: vec![format!("mx1.{domain}"), format!("backup.{domain}")],
        ..LintOptions::default()
    };
    let now = time::macros::datetime!(2025-11-23 09:41:07 UTC);
    let report = lint("policy", policy.as_bytes(), &options, now);
    mtasts_scan::summary::problem_findings(&serde_json::to_string(&report).unwrap())
}

#[test]
fn report_renders_in_chromium() {
    let all = rows();
    let mut builder = SummaryBuilder::default();
    for r in &all {
        builder.add(r);
    }
    let summary = builder.finish();
    // As `summarize` keeps them: problem domains (not invalid input lines), with their
    // warning and error findings. Those with mx-not-covered carry real findings and fixes,
    // from the same judges `check` runs (here through `lint`, on the policy they publish).
    let mut problems: Vec<ResultRow> = all
        .iter()
        .filter(|r| r.category != Category::InvalidName)
        .filter(|r| !r.error_codes.is_empty() || !r.warning_codes.is_empty())
        .cloned()
        .collect();
    for r in problems.iter_mut().filter(|r| r.error_codes.iter().any(|c| c == "mx-not-covered")) {
        r.report_json = problem_json(&r.domain);
    }
    let detailed = problems.iter().position(|r| r.report_json.contains("mx-not-covered")).unwrap();
    problems.swap(0, detailed);
    let open = problems[0].domain.clone();
    assert!(problems.len() >= 50, "{} problem rows", problems.len());
    let meta = ReportMeta {
        title: TITLE.to_owned(),
        generated_at: "2025-11-23T09:41:07Z".to_owned(),
        input: "top-domains.txt".to_owned(),
        run_id: Some(42),
        duration_secs: 187.4,
    };
    let html = render(&summary, &problems, &meta);

    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let work = tmp.join(format!("html-report-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let Some(mut browser) = Browser::find(&work) else { return };
    let page = work.join("scan-report.html");
    std::fs::write(&page, &html).unwrap();
    let url = file_url(&page);

    // Screenshot, the worst problem domain opened to its findings and fixes.
    let png = work.join("scan-report.png");
    browser.screenshot(&format!("{url}#open={open}"), &png, 1280, 3400);
    let bytes = std::fs::read(&png).unwrap();
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(bytes.len() > 20_000, "screenshot of {} bytes: a blank page?", bytes.len());
    let kept = tmp.join("scan-report.png");
    std::fs::copy(&png, &kept).unwrap();
    std::fs::copy(&page, tmp.join("scan-report.html")).unwrap();
    println!("screenshot: {}", kept.display());

    // The DOM after the script ran, sorted by max_age (numerically) and filtered by a code.
    let dom = browser.dump_dom(&format!("{url}#sort=max_age&q=mx-not-covered"));
    assert!(dom.contains("data-ready=\"true\""), "the table script did not run");
    assert_eq!(
        dom.matches("<td class=\"dom\"").count(),
        problems.len(),
        "every problem is a table row"
    );
    assert_eq!(
        dom.matches("<tr").count(),
        problems.len() + 1,
        "header row plus one row per problem"
    );
    assert_eq!(dom.matches("<svg").count(), 5, "five charts");

    // Filter: exactly the rows with mx-not-covered are shown.
    let expected =
        problems.iter().filter(|r| r.error_codes.iter().any(|c| c == "mx-not-covered")).count();
    assert!(expected > 0);
    assert!(
        dom.contains(&format!("data-shown=\"{expected}\"")),
        "filter: expected {expected} rows shown"
    );
    assert_eq!(dom.matches(" hidden=\"\"").count(), problems.len() - expected, "hidden rows");

    // Sort: max_age ascending, numerically (86400 before 604800 before 31557600), blanks last.
    assert!(dom.contains("data-key=\"max_age\" scope=\"col\" aria-sort=\"ascending\""));
    let keys = max_age_keys(&dom);
    assert_eq!(keys.len(), problems.len());
    let first_blank = keys.iter().position(String::is_empty).unwrap_or(keys.len());
    assert!(keys[first_blank..].iter().all(String::is_empty), "blanks last: {keys:?}");
    let numbers: Vec<u64> = keys[..first_blank].iter().map(|k| k.parse().unwrap()).collect();
    assert!(numbers.windows(2).all(|w| w[0] <= w[1]), "numeric order: {numbers:?}");
    assert!(numbers.contains(&86_400) && numbers.contains(&31_557_600));

    // Findings and fixes of a problem domain, opened by `#open=`, as in the screenshot.
    let opened = browser.dump_dom(&format!("{url}#open={open}"));
    assert_eq!(
        opened.matches("<details open=\"\">").count(),
        1,
        "exactly the asked-for domain is open"
    );
    let details = &opened[opened.find("<details open=\"\">").unwrap()..];
    let details = &details[..details.find("</details>").unwrap()];
    assert!(
        details.contains(&format!("MX backup.{open} is not matched by any mx: line of the policy")),
        "{details}"
    );
    assert!(details.contains("<b>Fix:</b> Add the line `mx: backup."), "{details}");
    assert!(
        details.contains(&format!("mx: mx1.{open}\nmx: backup.{open}\nmax_age: 604800")),
        "the policy to paste: {details}"
    );
    assert!(
        details.contains(&format!("_mta-sts.{open}. 3600 IN TXT \"v=STSv1; id=20251123094107;\"")),
        "the record: {details}"
    );

    // Input lines that are not domain names have their own section, not table rows.
    assert!(dom.contains("Input lines that are not domain names <span class=\"count\">1</span>"));
    assert!(!problems.iter().any(|r| r.category == Category::InvalidName));

    // The hostile input line stayed text.
    assert!(dom.contains(&format!("<title>{TITLE}</title>")), "title changed");
    assert!(!dom.contains("pwned</title>") && !dom.contains("<b>x</b>"));
    assert!(dom.contains(
        "&lt;script&gt;document.title='pwned'&lt;/script&gt;&lt;b&gt;x&lt;/b&gt;.example"
    ));

    // An empty scan renders too (no table, no script errors).
    let empty = work.join("empty.html");
    std::fs::write(
        &empty,
        render(&SummaryBuilder::default().finish(), &[], &ReportMeta::default()),
    )
    .unwrap();
    let dom = browser.dump_dom(&file_url(&empty));
    assert!(dom.contains("No domain has errors or warnings."));
    assert!(!dom.contains("<table"));
    assert_eq!(dom.matches("<svg").count(), 2, "adoption and grades charts");

    let _ = std::fs::remove_dir_all(&work);
}
