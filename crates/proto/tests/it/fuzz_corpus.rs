//! Replays the checked-in fuzz corpus (`fuzz/corpus/<target>/`) through the
//! same entry points the fuzz targets use.

use std::path::PathBuf;

use mtasts_proto::fuzzing;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus").join(target);
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if !path.is_file() {
            continue;
        }
        let data = std::fs::read(&path).unwrap();
        let result = std::panic::catch_unwind(|| run(&data));
        assert!(result.is_ok(), "{} panicked", path.display());
        count += 1;
    }
    assert!(count >= 10, "{target}: only {count} corpus files");
}

#[test]
fn sts_record_corpus() {
    replay("sts_record", fuzzing::sts_record);
}

#[test]
fn policy_corpus() {
    replay("policy", fuzzing::policy);
}

#[test]
fn tlsrpt_record_corpus() {
    replay("tlsrpt_record", fuzzing::tlsrpt_record);
}

#[test]
fn report_corpus() {
    replay("report", fuzzing::report);
}

#[test]
fn socketmap_corpus() {
    replay("socketmap", fuzzing::socketmap);
}

#[test]
fn datagram_corpus() {
    replay("datagram", fuzzing::datagram);
}
