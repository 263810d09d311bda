//! Intake, then storage: what `mtasts report ingest` and the HTTPS receiver do with what they
//! receive. A report is acknowledged only once it is committed (or found already stored).

use mtasts_store::reports::{ReportStore, ReportStoreError};

use crate::dkim::{DkimPolicy, DkimVerdict, DkimVerifier};
use crate::intake::{self, Extracted, IntakeError, Limits};
use crate::record::{Channel, new_report};

/// One report taken in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ingested {
    /// Its row id.
    pub id: i64,
    /// It was stored before (another delivery of the same report); nothing new was stored.
    pub duplicate: bool,
    /// `organization-name`.
    pub organization: String,
    /// `report-id`.
    pub report_id: String,
    /// The policy domains it reports on.
    pub domains: Vec<String>,
    /// Deviations from RFC 8460 tolerated, in words.
    pub tolerated: Vec<String>,
    /// The DKIM result stored (`pass:DOMAIN`, `fail`, `none`), when verified.
    pub dkim: Option<String>,
}

/// Why something received was not taken.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    /// What was received is not an acceptable report: permanent, bounce it.
    #[error("rejected: {0}")]
    Rejected(#[from] IntakeError),
    /// The database failed: temporary, deliver again later.
    #[error("not stored (try again later): {0}")]
    Store(#[from] ReportStoreError),
    /// DKIM is required and its key could not be looked up: temporary.
    #[error("not stored (try again later): {0}")]
    DkimLookup(String),
}

impl IngestError {
    /// True when a later delivery of the same bytes may succeed.
    pub fn is_temporary(&self) -> bool {
        matches!(self, Self::Store(_) | Self::DkimLookup(_))
    }
}

/// Takes reports into a store.
#[derive(Clone, Debug)]
pub struct Ingestor {
    store: ReportStore,
    limits: Limits,
    dkim: Option<(DkimVerifier, DkimPolicy)>,
}

impl Ingestor {
    /// An ingestor writing to `store`.
    pub fn new(store: ReportStore, limits: Limits) -> Self {
        Self { store, limits, dkim: None }
    }

    /// Verifies the DKIM signature of report mail, and keeps, flags or refuses by `policy`.
    pub fn with_dkim(mut self, verifier: DkimVerifier, policy: DkimPolicy) -> Self {
        self.dkim = (policy != DkimPolicy::Off).then_some((verifier, policy));
        self
    }

    /// The store.
    pub fn store(&self) -> &ReportStore {
        &self.store
    }

    /// The limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Every report in a mail message. Nothing is stored unless every report in it is valid.
    pub async fn mail(&self, message: &[u8], now: i64) -> Result<Vec<Ingested>, IngestError> {
        let found = intake::from_mail(message, &self.limits)?;
        let verdict = match &self.dkim {
            Some((verifier, policy)) => {
                let verdict = verifier.verify(message).await;
                if *policy == DkimPolicy::Require {
                    match &verdict {
                        DkimVerdict::Pass { .. } => {}
                        DkimVerdict::TempError { .. } => {
                            return Err(IngestError::DkimLookup(verdict.words()));
                        }
                        _ => return Err(IntakeError::Dkim { reason: verdict.words() }.into()),
                    }
                }
                Some(verdict.stored())
            }
            None => None,
        };
        let mut out = Vec::with_capacity(found.len());
        for e in &found {
            out.push(self.commit(e, Channel::Mail, now, verdict.as_deref()).await?);
        }
        Ok(out)
    }

    /// A report file (JSON or gzip).
    pub async fn file(&self, bytes: &[u8], name: &str, now: i64) -> Result<Ingested, IngestError> {
        let e = intake::from_file(bytes, &self.limits, name)?;
        self.commit(&e, Channel::File, now, None).await
    }

    /// An HTTPS POST body (RFC 8460 §5.4).
    pub async fn https(
        &self,
        content_type: &str,
        body: &[u8],
        client: Option<&str>,
        now: i64,
    ) -> Result<Ingested, IngestError> {
        let mut e = intake::from_https(content_type, body, &self.limits)?;
        e.headers.submitter = client.map(str::to_owned);
        self.commit(&e, Channel::Https, now, None).await
    }

    async fn commit(
        &self,
        e: &Extracted,
        channel: Channel,
        now: i64,
        dkim: Option<&str>,
    ) -> Result<Ingested, IngestError> {
        let row = new_report(e, channel, now, dkim);
        let stored = self.store.insert(&row).await?;
        Ok(Ingested {
            id: stored.id,
            duplicate: stored.duplicate,
            organization: row.organization,
            report_id: row.report_id,
            domains: row.policies.iter().filter_map(|p| p.policy_domain.clone()).collect(),
            tolerated: e.tolerated.iter().map(ToString::to_string).collect(),
            dkim: dkim.map(str::to_owned),
        })
    }
}
