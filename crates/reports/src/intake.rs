//! From bytes received to parsed reports. No I/O.
//!
//! RFC 8460 §5.3: a report mail is `multipart/report; report-type=tlsrpt` with the report as
//! an `application/tlsrpt+gzip` (or `+json`) part, and `TLS-Report-Domain` /
//! `TLS-Report-Submitter` headers. Real senders also use `application/tlsrpt` (no suffix),
//! `application/gzip`, `application/json` or `application/octet-stream` with a `.json` / `.gz`
//! file name, or forget the `report-type` (`../shared/research`, quirk 11); so every leaf part
//! is a candidate when its media type, its file name or its first bytes (gzip magic, `{`) say
//! report, and the media type of the whole message is only noted. §5.4: an HTTPS POST body is
//! `application/tlsrpt+gzip` or `application/tlsrpt+json`.
//!
//! Every decompression is capped ([`Limits::max_report`]): a gzip bomb stops at the cap, a
//! truncated gzip is an error, nothing partial comes out.

use std::io::Read;

use flate2::read::MultiGzDecoder;
use mail_parser::{MessageParser, MimeHeaders, PartType};
use mtasts_proto::report::{REPORT_MAX_BYTES, Report, ReportError, Tolerated};

/// Size limits of the intake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest message or HTTPS body accepted, as received (compressed), in bytes.
    pub max_message: usize,
    /// Largest report after decompression, in bytes (RFC 8460 §5.2 leaves the limit to the
    /// receiver; 10 MiB by default, [`REPORT_MAX_BYTES`]).
    pub max_report: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_message: 20 * 1024 * 1024, max_report: REPORT_MAX_BYTES }
    }
}

/// Why nothing was taken from what was received. Each says what is wrong in words a sender's
/// postmaster (in a bounce) or an administrator (on stderr) understands.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IntakeError {
    /// Larger than [`Limits::max_message`].
    #[error("the message is {size} bytes, more than the {limit}-byte limit")]
    MessageTooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Not a MIME message at all.
    #[error("not an e-mail message (no headers could be read)")]
    NotMail,
    /// A message with no report in it.
    #[error(
        "not a TLS-RPT report (RFC 8460 §5.3): no application/tlsrpt+gzip or +json part; the message has {parts}"
    )]
    NoReport {
        /// The parts it has, in words.
        parts: String,
    },
    /// Decompressed, the report is larger than the limit (a gzip bomb, or a huge report).
    #[error(
        "{part}: decompressed, the report is larger than the {limit}-byte limit (a gzip bomb?)"
    )]
    ReportTooLarge {
        /// Which part.
        part: String,
        /// The limit.
        limit: usize,
    },
    /// The gzip stream is broken or truncated.
    #[error("{part}: the gzip data is broken ({reason})")]
    Gzip {
        /// Which part.
        part: String,
        /// What the decoder said.
        reason: String,
    },
    /// The report is not a valid TLS-RPT report.
    #[error("{part}: {error}")]
    Report {
        /// Which part.
        part: String,
        /// The parser's error, naming the JSON path and rule.
        error: ReportError,
    },
    /// DKIM is required and did not pass.
    #[error("RFC 8460 §3: report mail must be DKIM-signed, and {reason}")]
    Dkim {
        /// The verdict in words.
        reason: String,
    },
    /// An HTTPS body of a media type RFC 8460 §5.4 does not define.
    #[error(
        "Content-Type {content_type:?} is not a TLS-RPT report type (RFC 8460 §5.4: application/tlsrpt+gzip or application/tlsrpt+json)"
    )]
    MediaType {
        /// What was sent.
        content_type: String,
    },
}

/// Headers of a report mail worth keeping.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MailHeaders {
    /// `TLS-Report-Domain` (RFC 8460 §5.3).
    pub report_domain: Option<String>,
    /// `TLS-Report-Submitter` (RFC 8460 §5.3).
    pub submitter: Option<String>,
    /// `From`, the address.
    pub from: Option<String>,
    /// `Message-ID`.
    pub message_id: Option<String>,
    /// `Subject`.
    pub subject: Option<String>,
}

/// One report taken from a message or body.
#[derive(Clone, Debug)]
pub struct Extracted {
    /// The report.
    pub report: Report,
    /// What the lenient parser accepted that the RFC does not, and notes on the envelope (a
    /// message that is not `multipart/report; report-type=tlsrpt`, a non-standard media type).
    pub tolerated: Vec<Tolerated>,
    /// The report's JSON as received, decompressed.
    pub raw_json: Vec<u8>,
    /// The part it came from, in words (e.g. `part 2 (application/tlsrpt+gzip, "x.json.gz")`).
    pub part: String,
    /// The mail's headers (empty for HTTPS).
    pub headers: MailHeaders,
}

/// How a candidate part is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Encoding {
    Gzip,
    Json,
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The reports in a mail message.
pub fn from_mail(message: &[u8], limits: &Limits) -> Result<Vec<Extracted>, IntakeError> {
    if message.len() > limits.max_message {
        return Err(IntakeError::MessageTooLarge {
            size: message.len(),
            limit: limits.max_message,
        });
    }
    let parsed = MessageParser::default().parse(message).ok_or(IntakeError::NotMail)?;
    if parsed.headers().is_empty() {
        return Err(IntakeError::NotMail);
    }
    let header =
        |name: &str| parsed.header_raw(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    let headers = MailHeaders {
        report_domain: header("TLS-Report-Domain"),
        submitter: header("TLS-Report-Submitter"),
        from: parsed.from().and_then(|a| a.first()).and_then(|a| a.address()).map(str::to_owned),
        message_id: parsed.message_id().map(str::to_owned),
        subject: parsed.subject().map(str::to_owned),
    };
    let mut envelope = Vec::new();
    let top = parsed.content_type();
    let is_report = top.is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case("multipart")
            && ct.subtype().is_some_and(|s| s.eq_ignore_ascii_case("report"))
            && ct.attribute("report-type").is_some_and(|t| t.eq_ignore_ascii_case("tlsrpt"))
    });
    if !is_report {
        envelope.push(Tolerated {
            path: "(message)".into(),
            code: "mail-not-multipart-report",
            message: format!(
                "RFC 8460 §5.3: the message is {}, not multipart/report; report-type=tlsrpt",
                top.map(media_type).unwrap_or_else(|| "text/plain".into())
            ),
            rfc_violation: true,
        });
    }
    let mut found = Vec::new();
    let mut seen = Vec::new();
    for (index, part) in parsed.parts.iter().enumerate() {
        let (PartType::Binary(_) | PartType::InlineBinary(_) | PartType::Text(_)) = &part.body
        else {
            continue;
        };
        let ct = part.content_type().map(media_type).unwrap_or_else(|| "text/plain".into());
        let name = part.attachment_name().map(str::to_owned);
        let body = part.contents();
        let describe = match &name {
            Some(n) => format!("part {} ({ct}, {n:?})", index + 1),
            None => format!("part {} ({ct})", index + 1),
        };
        seen.push(match &name {
            Some(n) => format!("{ct} {n:?}"),
            None => ct.clone(),
        });
        let Some((encoding, standard)) = candidate(&ct, name.as_deref(), body) else { continue };
        let mut tolerated = envelope.clone();
        if !standard {
            tolerated.push(Tolerated {
                path: describe.clone(),
                code: "mail-nonstandard-media-type",
                message: format!(
                    "RFC 8460 §5.3: the report part is {ct}, not application/tlsrpt+gzip or +json"
                ),
                rfc_violation: true,
            });
        }
        let raw = decode(body, encoding, limits.max_report, &describe)?;
        let (report, mut quirks) = Report::parse_lenient(&raw)
            .map_err(|error| IntakeError::Report { part: describe.clone(), error })?;
        tolerated.append(&mut quirks);
        found.push(Extracted {
            report,
            tolerated,
            raw_json: raw,
            part: describe,
            headers: headers.clone(),
        });
    }
    if found.is_empty() {
        let parts = if seen.is_empty() { "no parts".to_owned() } else { seen.join(", ") };
        return Err(IntakeError::NoReport { parts: format!("parts: {parts}") });
    }
    Ok(found)
}

/// The report in an HTTPS POST body (RFC 8460 §5.4), by its `Content-Type`.
pub fn from_https(
    content_type: &str,
    body: &[u8],
    limits: &Limits,
) -> Result<Extracted, IntakeError> {
    if body.len() > limits.max_message {
        return Err(IntakeError::MessageTooLarge { size: body.len(), limit: limits.max_message });
    }
    let media = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let encoding = match media.as_str() {
        "application/tlsrpt+gzip" => Encoding::Gzip,
        "application/tlsrpt+json" => Encoding::Json,
        _ => return Err(IntakeError::MediaType { content_type: content_type.to_owned() }),
    };
    let raw = decode(body, encoding, limits.max_report, "the body")?;
    let (report, tolerated) = Report::parse_lenient(&raw)
        .map_err(|error| IntakeError::Report { part: "the body".into(), error })?;
    Ok(Extracted {
        report,
        tolerated,
        raw_json: raw,
        part: format!("the body ({media})"),
        headers: MailHeaders::default(),
    })
}

/// A report file as saved from a mail: JSON, or gzip-compressed JSON, told apart by content.
pub fn from_file(bytes: &[u8], limits: &Limits, name: &str) -> Result<Extracted, IntakeError> {
    let encoding = if bytes.starts_with(&GZIP_MAGIC) { Encoding::Gzip } else { Encoding::Json };
    let raw = decode(bytes, encoding, limits.max_report, name)?;
    let (report, tolerated) = Report::parse_lenient(&raw)
        .map_err(|error| IntakeError::Report { part: name.into(), error })?;
    Ok(Extracted {
        report,
        tolerated,
        raw_json: raw,
        part: name.into(),
        headers: MailHeaders::default(),
    })
}

/// What the first bytes of a file say it is.
pub fn looks_like_report_file(bytes: &[u8]) -> bool {
    bytes.starts_with(&GZIP_MAGIC) || first_non_space(bytes) == Some(b'{')
}

fn first_non_space(bytes: &[u8]) -> Option<u8> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    bytes.iter().copied().find(|b| !b.is_ascii_whitespace())
}

fn media_type(ct: &mail_parser::ContentType<'_>) -> String {
    match ct.subtype() {
        Some(sub) => format!("{}/{}", ct.ctype(), sub).to_ascii_lowercase(),
        None => ct.ctype().to_ascii_lowercase(),
    }
}

/// Whether a part carries a report, how it is encoded, and whether its media type is the
/// standard one.
fn candidate(ct: &str, name: Option<&str>, body: &[u8]) -> Option<(Encoding, bool)> {
    let gz = body.starts_with(&GZIP_MAGIC);
    match ct {
        "application/tlsrpt+gzip" => return Some((Encoding::Gzip, true)),
        "application/tlsrpt+json" => {
            return Some((if gz { Encoding::Gzip } else { Encoding::Json }, true));
        }
        "application/tlsrpt" => {
            return Some((if gz { Encoding::Gzip } else { Encoding::Json }, false));
        }
        _ => {}
    }
    let name = name.unwrap_or("").to_ascii_lowercase();
    let by_name = name.ends_with(".json") || name.ends_with(".json.gz") || name.ends_with(".gz");
    let by_type = matches!(
        ct,
        "application/gzip" | "application/x-gzip" | "application/json" | "application/octet-stream"
    );
    if !(by_name || by_type) {
        return None;
    }
    if gz {
        Some((Encoding::Gzip, false))
    } else if first_non_space(body) == Some(b'{') {
        Some((Encoding::Json, false))
    } else {
        None
    }
}

/// Decodes a candidate, capped at `limit` bytes.
fn decode(
    body: &[u8],
    encoding: Encoding,
    limit: usize,
    part: &str,
) -> Result<Vec<u8>, IntakeError> {
    match encoding {
        Encoding::Json => {
            if body.len() > limit {
                return Err(IntakeError::ReportTooLarge { part: part.into(), limit });
            }
            Ok(body.to_vec())
        }
        Encoding::Gzip => {
            // The gzip trailer's ISIZE (RFC 1952 §2.3.1: the input size modulo 2^32) sizes the
            // buffer in one allocation; it is only a hint (a sender controls it), so it is
            // capped by the limit and the cap below still decides.
            let hint = body
                .len()
                .checked_sub(4)
                .and_then(|at| body.get(at..))
                .and_then(|t| <[u8; 4]>::try_from(t).ok())
                .map_or(0, |t| usize::try_from(u32::from_le_bytes(t)).unwrap_or(0));
            let mut out = Vec::with_capacity(hint.min(limit).saturating_add(1));
            let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
            MultiGzDecoder::new(body)
                .take(cap)
                .read_to_end(&mut out)
                .map_err(|e| IntakeError::Gzip { part: part.into(), reason: e.to_string() })?;
            if out.len() > limit {
                return Err(IntakeError::ReportTooLarge { part: part.into(), limit });
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::io::Write;

    use super::*;

    const REPORT: &str = r#"{"organization-name":"Example","date-range":{"start-datetime":"2026-12-01T00:00:00Z","end-datetime":"2026-12-01T23:59:59Z"},"contact-info":"tlsrpt@example.net","report-id":"r1","policies":[{"policy":{"policy-type":"sts","policy-string":["version: STSv1","mode: testing","mx: mx.example.com","max_age: 86400"],"policy-domain":"example.com","mx-host":["mx.example.com"]},"summary":{"total-successful-session-count":5,"total-failure-session-count":1},"failure-details":[{"result-type":"certificate-expired","sending-mta-ip":"192.0.2.1","receiving-mx-hostname":"mx.example.com","failed-session-count":1}]}]}"#;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn https_bodies_by_media_type() {
        let l = Limits::default();
        let r = from_https("application/tlsrpt+json", REPORT.as_bytes(), &l).unwrap();
        assert_eq!(r.report.report_id, "r1");
        let r = from_https("application/tlsrpt+gzip; charset=binary", &gzip(REPORT.as_bytes()), &l)
            .unwrap();
        assert_eq!(r.report.total_failure(), 1);
        assert!(matches!(
            from_https("text/plain", REPORT.as_bytes(), &l),
            Err(IntakeError::MediaType { .. })
        ));
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_cap_and_truncation_is_an_error() {
        let l = Limits { max_message: 1 << 20, max_report: 64 * 1024 };
        let bomb = gzip(&vec![b' '; 10 * 1024 * 1024]);
        assert!(bomb.len() < 64 * 1024);
        let e = from_https("application/tlsrpt+gzip", &bomb, &l).unwrap_err();
        assert!(matches!(e, IntakeError::ReportTooLarge { .. }), "{e}");
        let whole = gzip(REPORT.as_bytes());
        let e = from_https("application/tlsrpt+gzip", &whole[..whole.len() - 10], &l).unwrap_err();
        assert!(matches!(e, IntakeError::Gzip { .. }), "{e}");
        let e = from_https("application/tlsrpt+json", b"not json", &l).unwrap_err();
        assert!(e.to_string().starts_with("the body: "), "{e}");
    }

    #[test]
    fn non_report_mail_is_refused_naming_its_parts() {
        let mail =
            b"From: a@example.com\r\nSubject: hello\r\nContent-Type: text/plain\r\n\r\nhi\r\n";
        let e = from_mail(mail, &Limits::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "not a TLS-RPT report (RFC 8460 §5.3): no application/tlsrpt+gzip or +json part; the message has parts: text/plain"
        );
        assert!(matches!(from_mail(b"", &Limits::default()), Err(IntakeError::NotMail)));
    }

    #[test]
    fn a_bare_json_attachment_in_plain_mail_is_taken_with_a_note() {
        let mail = format!(
            "From: r@example.net\r\nTLS-Report-Domain: example.com\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>report</p>\r\n\
             --b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=report.json\r\n\r\n{REPORT}\r\n--b--\r\n"
        );
        let found = from_mail(mail.as_bytes(), &Limits::default()).unwrap();
        assert_eq!(found.len(), 1);
        let codes: Vec<_> = found[0].tolerated.iter().map(|t| t.code).collect();
        assert!(
            codes.contains(&"mail-not-multipart-report")
                && codes.contains(&"mail-nonstandard-media-type"),
            "{codes:?}"
        );
        assert_eq!(found[0].headers.report_domain.as_deref(), Some("example.com"));
    }
}
