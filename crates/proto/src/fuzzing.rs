//! Entry points shared by the cargo-fuzz targets in `fuzz/` and the corpus
//! replay test, so both run identical code.
//!
//! Each function feeds the parser the raw bytes and the same bytes mapped
//! into a small alphabet of the grammar's characters, so that the fuzzer
//! reaches deep parser states quickly. Each asserts invariants: a value that
//! parses re-parses from its canonical form to an equal value. The
//! assertions are the point of these functions; they panic only when an
//! invariant is broken.

use crate::datagram::Datagram;
use crate::diag::Warning;
use crate::policy::Policy;
use crate::report::Report;
use crate::socketmap::{PolicyKey, QUERY_MAX_BYTES, decode, encode, parse_request, policy_key};
use crate::sts_record::{StsRecord, select_sts_record};
use crate::tlsrpt_record::{TlsRptRecord, select_tlsrpt_record};

const STS_ALPHABET: &[u8] = b"v=STSv1; id=abcXYZ0129_-.!\t \x00";
const POLICY_ALPHABET: &[u8] = b"abcdefmxvSTv1=;:. *\n\r0123456789_-";
const TLSRPT_ALPHABET: &[u8] = b"v=TLSRPTv1; rua=mailto:htps/@.,%2Cexample!\t";
const SOCKETMAP_ALPHABET: &[u8] = b"0123456789:, .[]postfixexample.com\x00\xff";
const DATAGRAM_ALPHABET: &[u8] = b"{}[]\",:0123456789.- dpvfctsnhrapoliy-ex";
const REPORT_ALPHABET: &[u8] = b"{}[]\",:0123456789.-eZT \nabcdeghilmnoprstuyx";

fn map_alphabet(data: &[u8], alphabet: &[u8]) -> Vec<u8> {
    data.iter().map(|b| alphabet[usize::from(*b) % alphabet.len()]).collect()
}

/// The canonical form may only repeat warnings the input already had (for
/// example a field named `ID`); formatting warnings must disappear.
fn assert_no_new_warnings(before: &[Warning], after: &[Warning], shown: &str) {
    for w in after {
        assert!(
            before.iter().any(|b| b.code == w.code),
            "canonical form {shown:?} raises new warning {w}"
        );
    }
}

fn lines(text: &str) -> Vec<String> {
    text.split('\n').map(str::to_owned).collect()
}

fn sts_one(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(parsed) = StsRecord::parse(text) {
        let shown = parsed.value.to_string();
        let again = StsRecord::parse(&shown)
            .unwrap_or_else(|e| panic!("canonical form {shown:?} does not parse: {e}"));
        assert_eq!(again.value, parsed.value, "round trip of {text:?}");
        assert_no_new_warnings(&parsed.warnings, &again.warnings, &shown);
    }
    let _ = select_sts_record(&lines(text));
}

/// Fuzzes [`StsRecord::parse`] and [`select_sts_record`].
pub fn sts_record(data: &[u8]) {
    sts_one(data);
    sts_one(&map_alphabet(data, STS_ALPHABET));
}

fn policy_one(data: &[u8]) {
    if let Ok(parsed) = Policy::parse_bytes(data) {
        let shown = parsed.value.to_string();
        let again = Policy::parse(&shown)
            .unwrap_or_else(|e| panic!("canonical form {shown:?} does not parse: {e}"));
        assert_eq!(again.value, parsed.value, "round trip");
        assert_no_new_warnings(&parsed.warnings, &again.warnings, &shown);
        for mx in parsed.value.mx() {
            let host = mx.to_string().replace('*', "x");
            assert!(parsed.value.matching_pattern(&host).is_some(), "{mx} does not match {host}");
        }
    }
}

/// Fuzzes [`Policy::parse_bytes`].
pub fn policy(data: &[u8]) {
    policy_one(data);
    policy_one(&map_alphabet(data, POLICY_ALPHABET));
}

fn tlsrpt_one(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(parsed) = TlsRptRecord::parse(text) {
        let shown = parsed.value.to_string();
        let again = TlsRptRecord::parse(&shown)
            .unwrap_or_else(|e| panic!("canonical form {shown:?} does not parse: {e}"));
        assert_eq!(again.value, parsed.value, "round trip of {text:?}");
        assert_no_new_warnings(&parsed.warnings, &again.warnings, &shown);
    }
    let _ = select_tlsrpt_record(&lines(text));
}

/// Fuzzes [`TlsRptRecord::parse`] and [`select_tlsrpt_record`].
pub fn tlsrpt_record(data: &[u8]) {
    tlsrpt_one(data);
    tlsrpt_one(&map_alphabet(data, TLSRPT_ALPHABET));
}

fn report_one(data: &[u8]) {
    let strict = Report::parse_strict(data);
    let lenient = Report::parse_lenient(data);
    match (&strict, &lenient) {
        (Ok(s), Ok((l, _))) => assert_eq!(s, l, "strict and lenient disagree"),
        (Ok(_), Err(e)) => panic!("strict accepted what lenient rejected: {e}"),
        _ => {}
    }
    if let Ok((report, _)) = lenient {
        let json = serde_json::to_vec(&report)
            .unwrap_or_else(|e| panic!("lenient-parsed report does not serialise: {e}"));
        let (again, _) = Report::parse_lenient(&json)
            .unwrap_or_else(|e| panic!("serialised report does not parse: {e}"));
        assert_eq!(again, report, "serialise/parse round trip");
    }
    if let Ok(report) = strict {
        let json = serde_json::to_vec(&report)
            .unwrap_or_else(|e| panic!("strict-parsed report does not serialise: {e}"));
        let again = Report::parse_strict(&json)
            .unwrap_or_else(|e| panic!("serialised strict report does not parse strictly: {e}"));
        assert_eq!(again, report, "strict round trip");
    }
}

/// Fuzzes [`Report::parse_strict`] and [`Report::parse_lenient`].
pub fn report(data: &[u8]) {
    report_one(data);
    report_one(&map_alphabet(data, REPORT_ALPHABET));
}

/// Every request payload a socketmap reader takes from `stream`, read at once, until the end
/// or the first framing error (after which a server closes the connection).
fn frames(stream: &[u8]) -> (Vec<Vec<u8>>, bool) {
    let mut out = Vec::new();
    let mut rest = stream;
    loop {
        match decode(rest, QUERY_MAX_BYTES) {
            Ok(Some(frame)) => {
                assert!(frame.consumed <= rest.len() && frame.payload.end < frame.consumed);
                assert!(frame.payload.len() <= QUERY_MAX_BYTES, "payload over the limit");
                out.push(rest[frame.payload.clone()].to_vec());
                rest = &rest[frame.consumed..];
            }
            Ok(None) => return (out, false),
            Err(_) => return (out, true),
        }
    }
}

/// The same, with the bytes arriving in pieces cut at `cuts` (a reader's view of TCP).
fn frames_in_pieces(stream: &[u8], cuts: &[usize]) -> (Vec<Vec<u8>>, bool) {
    let mut out = Vec::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut fed = 0;
    let mut ends: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
    ends.push(stream.len());
    ends.sort_unstable();
    for end in ends {
        if end < fed {
            continue;
        }
        buf.extend_from_slice(&stream[fed..end]);
        fed = end;
        loop {
            match decode(&buf, QUERY_MAX_BYTES) {
                Ok(Some(frame)) => {
                    out.push(buf[frame.payload.clone()].to_vec());
                    buf.drain(..frame.consumed);
                }
                Ok(None) => break,
                Err(_) => return (out, true),
            }
        }
    }
    (out, false)
}

fn socketmap_one(data: &[u8]) {
    let (whole, failed) = frames(data);
    let cuts: Vec<usize> = data.iter().take(8).map(|b| usize::from(*b) * 7).collect();
    assert_eq!(frames_in_pieces(data, &cuts), (whole.clone(), failed), "pieces and whole differ");
    for payload in &whole {
        let Ok(request) = parse_request(payload) else { continue };
        assert!(!request.name.is_empty() && !request.key.is_empty());
        match policy_key(request.key) {
            PolicyKey::Domain(d) => {
                let name = d.as_str();
                assert!(!name.ends_with('.') && !name.starts_with('.'), "{name:?}");
                assert_eq!(name, name.to_ascii_lowercase(), "policy domains are lower case");
                // The domain's own name is a key for itself.
                assert_eq!(policy_key(name), PolicyKey::Domain(d.clone()));
            }
            PolicyKey::NotADomain(_) => {}
        }
        // A reply built from the key is framed so that it decodes back to itself.
        let reply = format!("TEMP {}", request.key);
        let framed = encode(&reply);
        let Ok(Some(frame)) = decode(&framed, usize::MAX) else {
            panic!("the frame of {reply:?} does not decode")
        };
        assert_eq!(&framed[frame.payload], reply.as_bytes());
        assert_eq!(frame.consumed, framed.len());
    }
}

/// Fuzzes the socketmap netstring reader ([`decode`], [`encode`]), [`parse_request`] and
/// [`policy_key`]: the frames of a pipelined stream are the same however it is cut, none is
/// over Postfix's limit, keys never panic.
pub fn socketmap(data: &[u8]) {
    socketmap_one(data);
    socketmap_one(&map_alphabet(data, SOCKETMAP_ALPHABET));
}

fn datagram_one(data: &[u8]) {
    if let Ok(d) = Datagram::parse(data) {
        let json = d.to_json();
        let again = Datagram::parse(json.as_bytes())
            .unwrap_or_else(|e| panic!("a written datagram does not parse: {e}: {json}"));
        assert_eq!(again, d, "datagram write/parse round trip");
    }
}

/// Fuzzes [`Datagram::parse`] and [`Datagram::to_json`].
pub fn datagram(data: &[u8]) {
    datagram_one(data);
    datagram_one(&map_alphabet(data, DATAGRAM_ALPHABET));
}
