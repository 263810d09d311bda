//! DNSSEC and DANE (RFC 8461 §2: a sender that validates DANE for a host uses it, and MTA-STS
//! must not override a failing DANE check; RFC 7672 for the TLSA records of SMTP).

use mtasts_net::dns::DnssecStatus;

use super::Judging;
use crate::finding::{Code, Finding};

pub(crate) fn judge(j: &mut Judging<'_>) {
    let Some(dane) = &j.obs.dane else { return };
    let d = j.obs.domain.as_str().to_owned();
    let text = match dane.dnssec {
        DnssecStatus::Authenticated => {
            "the resolver validated the MX answer with DNSSEC (AD bit set)"
        }
        DnssecStatus::NotAuthenticated => {
            "the MX answer is not DNSSEC-authenticated (unsigned zone, or a non-validating resolver)"
        }
        DnssecStatus::Unknown => "DNSSEC status could not be learned from the resolver",
    };
    j.push(Finding::new(Code::DnssecStatus, text).subject(&d));
    for (host, records) in &dane.tlsa {
        let list: Vec<String> = records.iter().map(ToString::to_string).collect();
        j.push(
            Finding::new(
                Code::DaneTlsa,
                format!(
                    "_25._tcp.{host}: {}; DANE-capable senders validate with these, and a valid MTA-STS result must not override a failing DANE check",
                    list.join(" | ")
                ),
            )
            .subject(host),
        );
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::testing::*;
    use crate::finding::{Code, Severity};
    use crate::observations::{DaneObservations, Observations};
    use mtasts_net::dns::{DnssecStatus, TlsaRecord};

    #[test]
    fn dnssec_and_tlsa_are_noted() {
        assert_eq!(severity_of(&run(&good()), Code::DnssecStatus), None);
        let obs = Observations {
            dane: Some(DaneObservations {
                dnssec: DnssecStatus::Authenticated,
                tlsa: vec![(
                    "mx1.example.com".into(),
                    vec![TlsaRecord { usage: 3, selector: 1, matching: 1, data: vec![0xab, 0xcd] }],
                )],
            }),
            ..good()
        };
        let r = run(&obs);
        assert_eq!(severity_of(&r, Code::DnssecStatus), Some(Severity::Info));
        let f = r.findings.iter().find(|f| f.code == Code::DaneTlsa).unwrap();
        assert!(f.message.starts_with("_25._tcp.mx1.example.com: 3 1 1 ABCD"), "{}", f.message);
    }
}
