//! The `_smtp._tls` TXT record (RFC 8460 §3).

use mtasts_proto::generate::{default_rua, tlsrpt_txt};
use mtasts_proto::{MxKind, TlsRptDiscoveryError, select_tlsrpt_record};

use super::{Judging, quote_all};
use crate::finding::{Code, Finding};
use crate::fix::Fix;

pub(crate) fn judge(j: &mut Judging<'_>) {
    let domain = &j.obs.domain;
    let name = domain.tlsrpt_txt_name();
    let fresh = tlsrpt_txt(domain, &default_rua(domain));
    let records = match &j.obs.tlsrpt_txt {
        Ok(a) => a.records.clone(),
        Err(e) if e.is_not_found() => Vec::new(),
        Err(e) => {
            j.push(Finding::new(Code::TlsRptDnsError, e.to_string()).subject(&name));
            j.out.incomplete();
            return;
        }
    };
    // RFC 7505: a domain with only a null MX receives no mail, so no TLS sessions to report.
    let receives_mail = !matches!(&j.obs.mx, Ok(set) if set.kind == MxKind::Null);
    match select_tlsrpt_record(&records) {
        Ok(found) => {
            j.push_warnings(Code::TlsRptWarning, &found.record.warnings, &name);
            j.push(Finding::new(Code::TlsRptOk, format!("\"{}\"", found.raw)).subject(&name));
            j.out.report.tlsrpt_record = Some(found.raw);
        }
        Err(TlsRptDiscoveryError::NoRecord { .. }) if receives_mail => {
            j.push(
                Finding::new(Code::TlsRptMissing, format!("{name} has no v=TLSRPTv1 record"))
                    .subject(&name)
                    .fix(
                        Fix::new("Publish (any mailbox you read will do):").publish(fresh.clone()),
                    ),
            );
            j.out.report.suggestions.tlsrpt_txt = Some(fresh);
        }
        Err(TlsRptDiscoveryError::NoRecord { .. }) => {}
        Err(TlsRptDiscoveryError::Multiple { records }) => j.push(
            Finding::new(
                Code::TlsRptMultiple,
                format!("{} v=TLSRPTv1 records: {}", records.len(), quote_all(&records)),
            )
            .subject(&name)
            .fix("Merge them into one record; several rua URIs can be listed, comma-separated"),
        ),
        Err(TlsRptDiscoveryError::Invalid { raw, error }) => j.push(
            Finding::new(Code::TlsRptInvalid, format!("\"{raw}\": {error}"))
                .subject(&name)
                .fix(Fix::new("Replace it with:").publish(fresh)),
        ),
        Err(other) => j.push(Finding::new(Code::TlsRptInvalid, other.to_string()).subject(&name)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::testing::*;
    use crate::finding::{Code, Severity};
    use crate::observations::Observations;
    use crate::report::Outcome;

    #[test]
    fn record_present_missing_multiple_invalid() {
        assert_eq!(severity_of(&run(&good()), Code::TlsRptOk), Some(Severity::Ok));
        let r = run(&Observations { tlsrpt_txt: Err(nodata("_smtp._tls.example.com")), ..good() });
        assert_eq!(severity_of(&r, Code::TlsRptMissing), Some(Severity::Warning));
        assert!(
            r.suggestions
                .tlsrpt_txt
                .as_deref()
                .unwrap()
                .contains("v=TLSRPTv1; rua=mailto:tlsrpt@example.com")
        );
        let r = run(&Observations {
            tlsrpt_txt: txt(&[
                "v=TLSRPTv1; rua=mailto:a@example.com",
                "v=TLSRPTv1; rua=mailto:b@example.com",
            ]),
            ..good()
        });
        assert_eq!(severity_of(&r, Code::TlsRptMultiple), Some(Severity::Error));
        let r = run(&Observations { tlsrpt_txt: txt(&["v=TLSRPTv1; rua=ftp://x"]), ..good() });
        assert_eq!(severity_of(&r, Code::TlsRptInvalid), Some(Severity::Error));
    }

    /// Issue 15, defect 5: a failed TLS-RPT lookup marks the check incomplete.
    #[test]
    fn defect_5_tlsrpt_lookup_failure_is_could_not_check() {
        let r =
            run(&Observations { tlsrpt_txt: Err(servfail("_smtp._tls.example.com")), ..good() });
        assert_eq!(severity_of(&r, Code::TlsRptDnsError), Some(Severity::Warning));
        assert_eq!(r.outcome, Outcome::CouldNotCheck);
        assert_eq!(crate::exit_code([&r]), 2);
    }
}
