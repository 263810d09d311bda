//! DKIM signing of report mail (RFC 8460 §3: reports sent by mail "MUST" carry a valid DKIM
//! signature by the reporting domain, without `l=`; RFC 6376). mail-auth signs, with ring:
//! an Ed25519 key (RFC 8463) or an RSA key, read from a PEM file.

use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256, SigningKey};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::DkimSigner;
use rustls::pki_types::PrivateKeyDer;

use crate::compose::SIGNED_HEADERS;

enum Key {
    Ed25519(Vec<u8>),
    Rsa(PrivateKeyDer<'static>),
}

/// Signs report mail as `d=domain; s=selector`.
pub struct Signer {
    key: Key,
    domain: String,
    selector: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("domain", &self.domain)
            .field("selector", &self.selector)
            .finish()
    }
}

/// Why a key or a signature failed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The key file is not a usable private key.
    #[error("DKIM key: {0}")]
    Key(String),
    /// Signing failed.
    #[error("DKIM signing failed: {0}")]
    Sign(String),
}

impl Signer {
    /// A signer from a PEM private key (PKCS#8 Ed25519 or RSA, or PKCS#1 RSA).
    pub fn from_pem(pem: &[u8], domain: &str, selector: &str) -> Result<Self, SignError> {
        let mut reader = std::io::BufReader::new(pem);
        let der = rustls_pemfile::private_key(&mut reader)
            .map_err(|e| SignError::Key(format!("not PEM: {e}")))?
            .ok_or_else(|| SignError::Key("no private key in the PEM file".into()))?;
        let key = match &der {
            PrivateKeyDer::Pkcs8(k)
                if Ed25519Key::from_pkcs8_maybe_unchecked_der(k.secret_pkcs8_der()).is_ok() =>
            {
                Key::Ed25519(k.secret_pkcs8_der().to_vec())
            }
            PrivateKeyDer::Pkcs8(_) | PrivateKeyDer::Pkcs1(_) => {
                RsaKey::<Sha256>::from_key_der(der.clone_key()).map_err(|e| {
                    SignError::Key(format!("neither an Ed25519 nor an RSA key: {e}"))
                })?;
                Key::Rsa(der)
            }
            _ => return Err(SignError::Key("only Ed25519 and RSA keys sign DKIM".into())),
        };
        Ok(Self { key, domain: domain.to_owned(), selector: selector.to_owned() })
    }

    /// The signing domain (`d=`).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    fn signature<K: SigningKey>(&self, key: K, message: &[u8]) -> Result<String, SignError> {
        Ok(DkimSigner::from_key(key)
            .domain(self.domain.clone())
            .selector(self.selector.clone())
            .headers(SIGNED_HEADERS)
            .sign(message)
            .map_err(|e| SignError::Sign(e.to_string()))?
            .to_header())
    }

    /// `message` with a DKIM-Signature header in front.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        let header = match &self.key {
            Key::Ed25519(der) => self.signature(
                Ed25519Key::from_pkcs8_maybe_unchecked_der(der)
                    .map_err(|e| SignError::Key(e.to_string()))?,
                message,
            )?,
            Key::Rsa(der) => self.signature(
                RsaKey::<Sha256>::from_key_der(der.clone_key())
                    .map_err(|e| SignError::Key(e.to_string()))?,
                message,
            )?,
        };
        let mut out = header.into_bytes();
        out.extend_from_slice(message);
        Ok(out)
    }
}
