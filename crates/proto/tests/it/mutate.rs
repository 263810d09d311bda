//! A deterministic mutation smoke-fuzzer on stable Rust: mutates the
//! checked-in fuzz corpus (byte flips, deletions, insertions, dictionary
//! tokens, splices) and runs the fuzz entry points. `ITERS` (per target,
//! default 2000) and `SEED` tune it; e.g.
//! `ITERS=1000000 cargo test -p mtasts-proto --test it mutate`.
use mtasts_proto::fuzzing;
use std::path::PathBuf;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }
}

#[test]
fn mutate_corpus() {
    let iters: usize = std::env::var("ITERS").ok().and_then(|s| s.parse().ok()).unwrap_or(2000);
    type Target = (&'static str, fn(&[u8]));
    let targets: [Target; 4] = [
        ("sts_record", fuzzing::sts_record),
        ("policy", fuzzing::policy),
        ("tlsrpt_record", fuzzing::tlsrpt_record),
        ("report", fuzzing::report),
    ];
    let mut rng =
        Rng(std::env::var("SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x9E3779B97F4A7C15));
    let mut failures = 0;
    let mut failed_inputs: Vec<String> = Vec::new();
    for (name, f) in targets {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus").join(name);
        let seeds: Vec<Vec<u8>> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| std::fs::read(e.unwrap().path()).unwrap())
            .collect();
        let dict: Vec<&[u8]> = vec![
            b"v=STSv1",
            b"id=",
            b";",
            b"version: STSv1\n",
            b"mode: ",
            b"mx: ",
            b"*.",
            b"max_age: ",
            b"\r\n",
            b"rua=",
            b"mailto:",
            b"https://",
            b"\"",
            b"null",
            b"[",
            b"{",
            b"Z",
            b"T00:00:00",
            b"-1",
            b"1e5",
            b"\"mx-host\"",
            b"\"policy-domain\":\"",
            b"\xff",
            b"\0",
            b"9999999999",
            b"0000-01-01T00:00:00+01:00",
        ];
        for _ in 0..iters {
            let mut d = seeds[rng.below(seeds.len())].clone();
            for _ in 0..(1 + rng.below(6)) {
                match rng.below(6) {
                    0 if !d.is_empty() => {
                        let i = rng.below(d.len());
                        d[i] = rng.next() as u8;
                    }
                    1 if !d.is_empty() => {
                        let i = rng.below(d.len());
                        d.remove(i);
                    }
                    2 => {
                        let i = rng.below(d.len() + 1);
                        d.insert(i, rng.next() as u8);
                    }
                    3 => {
                        let i = rng.below(d.len() + 1);
                        let w = dict[rng.below(dict.len())];
                        d.splice(i..i, w.iter().copied());
                    }
                    4 if !d.is_empty() => {
                        let a = rng.below(d.len());
                        let b = (a + rng.below(16)).min(d.len());
                        d.drain(a..b);
                    }
                    _ => {
                        let other = &seeds[rng.below(seeds.len())];
                        if !other.is_empty() {
                            let a = rng.below(other.len());
                            let b = (a + rng.below(40)).min(other.len());
                            let i = rng.below(d.len() + 1);
                            d.splice(i..i, other[a..b].iter().copied());
                        }
                    }
                }
            }
            if std::panic::catch_unwind(|| f(&d)).is_err() {
                failures += 1;
                if failed_inputs.len() < 5 {
                    failed_inputs.push(format!("{name}: {:?}", String::from_utf8_lossy(&d)));
                }
            }
        }
    }
    assert_eq!(failures, 0, "failing inputs: {failed_inputs:#?}");
}
