//! Trust roots for HTTPS and SMTP certificate validation (RFC 8461 §3.3, §4.2: certificates must
//! chain to a trusted root).

use std::path::PathBuf;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// Where trusted root certificates come from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum TrustRoots {
    /// Mozilla's root program as compiled into `webpki-roots`: the same answer on every machine.
    #[default]
    WebPki,
    /// The operating system's store (`/etc/ssl/certs` on Debian).
    System,
    /// Every certificate in a PEM file (a private CA, or a test CA).
    PemFile(PathBuf),
}

/// Why trust roots could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    /// The PEM file could not be read or parsed.
    #[error("cannot read trust roots from {path}: {reason}")]
    PemFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The source held no usable certificate.
    #[error("no usable root certificate in {source_name}")]
    Empty {
        /// Which source.
        source_name: String,
    },
}

impl TrustRoots {
    /// Parses the command-line form: `webpki`, `system`, or a path to a PEM file (optionally
    /// written `file:PATH`).
    pub fn from_arg(arg: &str) -> Self {
        match arg {
            "webpki" | "mozilla" => Self::WebPki,
            "system" => Self::System,
            other => Self::PemFile(PathBuf::from(other.strip_prefix("file:").unwrap_or(other))),
        }
    }

    /// Loads the roots into a store.
    pub fn load(&self) -> Result<Arc<RootCertStore>, TrustError> {
        let mut store = RootCertStore::empty();
        match self {
            Self::WebPki => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            Self::System => {
                let found = rustls_native_certs::load_native_certs();
                let (_added, _ignored) = store.add_parsable_certificates(found.certs);
            }
            Self::PemFile(path) => {
                let certs = CertificateDer::pem_file_iter(path)
                    .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| TrustError::PemFile {
                        path: path.clone(),
                        reason: e.to_string(),
                    })?;
                let (_added, _ignored) = store.add_parsable_certificates(certs);
            }
        }
        if store.is_empty() {
            return Err(TrustError::Empty { source_name: format!("{self:?}") });
        }
        Ok(Arc::new(store))
    }
}
