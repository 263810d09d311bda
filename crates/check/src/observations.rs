//! What the gathering step saw for one domain: every DNS answer, the policy fetch, the MX
//! probes. Plain data, no I/O: the judges (`crate::judge`) are pure functions of an
//! [`Observations`] value and the time, so they can be unit-tested from hand-made values and
//! reused by `serve` (monitoring, "may this domain move to enforce?") on stored observations.

use mtasts_net::dns::{DnssecStatus, TlsaRecord, TxtAnswer};
use mtasts_net::{DnsError, FetchError, FetchedPolicy, ProbeReport};
use mtasts_proto::{DomainName, MxSet};

/// Everything learned about one domain.
#[derive(Clone, Debug)]
pub struct Observations {
    /// The domain, as checked.
    pub domain: DomainName,
    /// TXT records at `_mta-sts.<domain>` (RFC 8461 §3.1).
    pub sts_txt: Result<TxtAnswer, DnsError>,
    /// The mail exchangers (RFC 5321 §5.1, RFC 7505).
    pub mx: Result<MxSet, DnsError>,
    /// The policy fetch from `https://mta-sts.<domain>/.well-known/mta-sts.txt` (§3.3).
    pub policy: Result<FetchedPolicy, FetchError>,
    /// TXT records at `_smtp._tls.<domain>` (RFC 8460 §3).
    pub tlsrpt_txt: Result<TxtAnswer, DnsError>,
    /// The SMTP probes of the MX hosts.
    pub probes: Probes,
    /// DNSSEC status and TLSA records, when looked up.
    pub dane: Option<DaneObservations>,
}

/// The MX probes.
#[derive(Clone, Debug, Default)]
pub enum Probes {
    /// Probing was turned off (`--no-smtp`).
    #[default]
    Off,
    /// One report per MX host, in the order of [`MxSet::hosts`] (empty when there were no
    /// hosts to probe).
    Done(Vec<ProbeReport>),
}

impl Probes {
    /// The report for `host`, if it was probed.
    pub fn get(&self, host: &str) -> Option<&ProbeReport> {
        match self {
            Self::Off => None,
            Self::Done(reports) => reports.iter().find(|r| r.host == host),
        }
    }
}

/// DANE-related answers (RFC 7672; RFC 8461 §2 says DANE takes precedence).
#[derive(Clone, Debug)]
pub struct DaneObservations {
    /// What the resolver says about the MX answer.
    pub dnssec: DnssecStatus,
    /// TLSA records at `_25._tcp.<host>`, per MX host that has them.
    pub tlsa: Vec<(String, Vec<TlsaRecord>)>,
}
