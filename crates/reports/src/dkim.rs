//! DKIM on report mail (RFC 8460 §3: "the report MUST be signed using DKIM"; RFC 6376). The
//! verification is mail-auth's, through the DNS server the operator names (tests: the test
//! world's). What happens to unsigned or failing reports is a setting ([`DkimPolicy`]).

use std::net::SocketAddr;
use std::time::Duration;

use mail_auth::hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts,
};
use mail_auth::{AuthenticatedMessage, DkimResult, MessageAuthenticator};

/// What to do with a report mail whose DKIM does not pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DkimPolicy {
    /// Do not verify.
    Off,
    /// Verify, store the result with the report, keep it either way (the default: reporters
    /// that do not sign exist, and their data is still worth reading).
    #[default]
    Flag,
    /// Verify and refuse reports without a passing signature.
    Require,
}

/// The DKIM verdict on one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DkimVerdict {
    /// A signature verified, by this signing domain (`d=`).
    Pass {
        /// The `d=` of the first passing signature.
        domain: String,
    },
    /// Signatures were present and none verified.
    Fail {
        /// Why, per signature, in mail-auth's words.
        reason: String,
    },
    /// No DKIM-Signature header.
    None,
    /// The key could not be looked up (DNS failure): try again later.
    TempError {
        /// Why.
        reason: String,
    },
}

impl DkimVerdict {
    /// The stored form: `pass:DOMAIN`, `fail`, `none`, `temperror`.
    pub fn stored(&self) -> String {
        match self {
            Self::Pass { domain } => format!("pass:{domain}"),
            Self::Fail { .. } => "fail".into(),
            Self::None => "none".into(),
            Self::TempError { .. } => "temperror".into(),
        }
    }

    /// In words, for a refusal.
    pub fn words(&self) -> String {
        match self {
            Self::Pass { domain } => format!("DKIM passed (d={domain})"),
            Self::Fail { reason } => format!("the DKIM signature does not verify ({reason})"),
            Self::None => "the message has no DKIM signature".into(),
            Self::TempError { reason } => format!("the DKIM key could not be looked up ({reason})"),
        }
    }
}

/// Verifies DKIM signatures through a DNS resolver.
#[derive(Clone)]
pub struct DkimVerifier {
    auth: MessageAuthenticator,
}

impl std::fmt::Debug for DkimVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DkimVerifier").finish_non_exhaustive()
    }
}

/// The resolver could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the DNS resolver for DKIM: {0}")]
pub struct DkimSetupError(String);

impl DkimVerifier {
    /// Through these DNS servers (UDP and TCP), each query within `timeout`; the system's
    /// resolvers when `servers` is empty.
    pub fn new(servers: &[SocketAddr], timeout: Duration) -> Result<Self, DkimSetupError> {
        let auth = if servers.is_empty() {
            MessageAuthenticator::new_system_conf().map_err(|e| DkimSetupError(e.to_string()))?
        } else {
            let name_servers = servers
                .iter()
                .map(|s| {
                    let mut udp = ConnectionConfig::udp();
                    udp.port = s.port();
                    let mut tcp = ConnectionConfig::tcp();
                    tcp.port = s.port();
                    NameServerConfig::new(s.ip(), true, vec![udp, tcp])
                })
                .collect();
            let mut opts = ResolverOpts::default();
            opts.timeout = timeout;
            opts.attempts = 1;
            MessageAuthenticator::new(ResolverConfig::from_parts(None, vec![], name_servers), opts)
                .map_err(|e| DkimSetupError(e.to_string()))?
        };
        Ok(Self { auth })
    }

    /// The verdict on `message`: pass when any signature verifies.
    pub async fn verify(&self, message: &[u8]) -> DkimVerdict {
        let Some(parsed) = AuthenticatedMessage::parse(message) else {
            return DkimVerdict::None;
        };
        let outputs = self.auth.verify_dkim(&parsed).await;
        if outputs.is_empty() {
            return DkimVerdict::None;
        }
        let mut reasons = Vec::new();
        let mut temporary = false;
        for o in &outputs {
            match o.result() {
                DkimResult::Pass => {
                    let domain = o.signature().map(|s| s.d.clone()).unwrap_or_default();
                    return DkimVerdict::Pass { domain };
                }
                DkimResult::TempError(e) => {
                    temporary = true;
                    reasons.push(e.to_string());
                }
                DkimResult::None => {}
                DkimResult::Neutral(e) | DkimResult::Fail(e) | DkimResult::PermError(e) => {
                    reasons.push(e.to_string());
                }
            }
        }
        if reasons.is_empty() {
            return DkimVerdict::None;
        }
        let reason = reasons.join("; ");
        if temporary { DkimVerdict::TempError { reason } } else { DkimVerdict::Fail { reason } }
    }
}
