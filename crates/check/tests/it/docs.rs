//! The documents that describe the checker's interface stay true.

use mtasts_check::finding::catalogue_markdown;

fn docs_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs")
}

#[test]
fn findings_catalogue_matches_docs() {
    let path = docs_dir().join("findings.md");
    let want = catalogue_markdown();
    if std::env::var_os("MTASTS_UPDATE_DOCS").is_some() {
        std::fs::write(&path, &want).unwrap();
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "docs/findings.md is out of date: run MTASTS_UPDATE_DOCS=1 cargo test -p mtasts-check"
    );
}

fn collect_keys(v: &serde_json::Value, out: &mut std::collections::BTreeSet<String>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                out.insert(k.clone());
                collect_keys(v, out);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|i| collect_keys(i, out)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_doc_describes_every_key_the_output_has() {
    use mtasts_testkit::{Scenario, World};
    let scenarios = [
        Scenario::Good,
        Scenario::NoMtaSts,
        Scenario::MxCertWrongName,
        Scenario::MxSilent,
        Scenario::MxNotCovered,
    ];
    let mut builder = World::builder();
    for s in scenarios {
        builder = builder.scenario(s);
    }
    let world = builder.build().await;
    let checker = crate::support::checker_for(&world);
    let mut sink = mtasts_check::render::JsonRenderer::default();
    let domains = scenarios.iter().map(Scenario::domain).collect();
    let Ok(code) = checker.check_all(domains, 4, &mut sink).await;
    let mut out = Vec::new();
    sink.finish(&mut out).unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(doc["schema"], mtasts_check::JSON_SCHEMA_VERSION);
    assert_eq!(doc["exit_code"], u64::from(code.code()));
    assert_eq!(doc["domains"].as_array().unwrap().len(), scenarios.len());
    let mut keys = std::collections::BTreeSet::new();
    collect_keys(&doc, &mut keys);
    let text = std::fs::read_to_string(docs_dir().join("check-json.md")).unwrap();
    let missing: Vec<_> = keys.iter().filter(|k| !text.contains(&format!("`{k}`"))).collect();
    assert!(missing.is_empty(), "docs/check-json.md does not describe: {missing:?}");
}

/// `docs/check-json.schema.json` accepts what `check` really prints, for every scenario of the
/// test world (probes, certificates, failures, suggestions, fixes), and `lint`'s output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_schema_validates_real_output() {
    use mtasts_testkit::{Scenario, World};
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(docs_dir().join("check-json.schema.json")).unwrap(),
    )
    .expect("the schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("the schema is a valid JSON Schema");
    let mut builder = World::builder();
    for s in Scenario::ALL {
        builder = builder.scenario(*s);
    }
    let world = builder.build().await;
    let checker = crate::support::checker_for(&world);
    let mut sink = mtasts_check::render::JsonRenderer::default();
    let mut domains: Vec<String> = Scenario::ALL.iter().map(Scenario::domain).collect();
    domains.extend(["not a domain".to_owned(), "nonexistent.test".to_owned()]);
    let Ok(_) = checker.check_all(domains, 16, &mut sink).await;
    let mut lint = mtasts_check::render::JsonRenderer::default();
    for text in
        ["version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: 60\n", "v=STSv1; id=a-b;"]
    {
        let options = mtasts_check::lint::LintOptions::default();
        let report = mtasts_check::lint::lint(
            "file",
            text.as_bytes(),
            &options,
            time::OffsetDateTime::now_utc(),
        );
        let Ok(_) = mtasts_check::Sink::report(&mut lint, &report);
    }
    for renderer in [sink, lint] {
        let mut out = Vec::new();
        renderer.finish(&mut out).unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let errors: Vec<String> =
            validator.iter_errors(&doc).map(|e| format!("{}: {e}", e.instance_path())).collect();
        assert!(
            errors.is_empty(),
            "the output breaks docs/check-json.schema.json:\n{}",
            errors.join("\n")
        );
    }
    // The schema can fail: a finding without a code is refused.
    let bad = serde_json::json!({"schema": 1, "exit_code": 0, "domains": [{"input": "x"}]});
    assert!(!validator.is_valid(&bad));
}
