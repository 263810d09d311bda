//! The Postfix socketmap protocol (socketmap_table(5)): netstrings on a stream, one request
//! `<name> <key>` and one reply per netstring, plus how Postfix's `smtp_tls_policy_maps` keys
//! name a policy domain (RFC 8461 §3.4).
//!
//! A netstring is `<length>:<bytes>,` with the length in ASCII decimal. Postfix sends queries of
//! at most [`QUERY_MAX_BYTES`] (`socketmap_max_query_size`, Postfix ≥ 3.12) and accepts replies
//! of at most [`REPLY_MAX_BYTES`] (`socketmap_max_reply_size`, Postfix ≥ 3.10).
//!
//! Pure code: [`decode`] looks at a buffer and says whether it holds a whole netstring, so a
//! server reads, decodes as many requests as the buffer holds (pipelining), and answers them in
//! order.

use std::fmt;
use std::net::IpAddr;

use crate::domain::DomainName;

/// Longest query payload Postfix sends: 10 000 bytes (`socketmap_max_query_size`).
pub const QUERY_MAX_BYTES: usize = 10_000;

/// Longest reply payload Postfix accepts: 100 000 bytes (`socketmap_max_reply_size`).
pub const REPLY_MAX_BYTES: usize = 100_000;

/// Digits allowed in a netstring length: enough for any length up to the limits above.
const LENGTH_MAX_DIGITS: usize = 10;

/// Why a buffer does not hold a valid netstring. The connection cannot be resynchronised after
/// any of these: the server answers nothing more on it and closes it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NetstringError {
    /// The length is not decimal digits followed by `:`.
    #[error(
        "netstring: the length must be decimal digits followed by \":\", found byte 0x{byte:02x} at offset {offset}"
    )]
    BadLength {
        /// The offending byte.
        byte: u8,
        /// Its offset in the netstring.
        offset: usize,
    },
    /// The announced length exceeds the limit.
    #[error("netstring: a payload of {length} bytes is over the limit of {limit}")]
    TooLong {
        /// The announced length (saturated when it has too many digits).
        length: usize,
        /// The limit.
        limit: usize,
    },
    /// The payload is not followed by `,`.
    #[error(
        "netstring: the payload of {length} bytes is not followed by \",\" (found byte 0x{byte:02x})"
    )]
    MissingComma {
        /// The payload length.
        length: usize,
        /// The byte found instead.
        byte: u8,
    },
}

/// A whole netstring found at the start of a buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Where the payload lies in the buffer.
    pub payload: std::ops::Range<usize>,
    /// Bytes the netstring takes, payload and framing included.
    pub consumed: usize,
}

/// Looks for one netstring at the start of `buf`. `Ok(None)`: more bytes are needed.
pub fn decode(buf: &[u8], limit: usize) -> Result<Option<Frame>, NetstringError> {
    let mut length: usize = 0;
    let mut digits = 0;
    for (offset, &byte) in buf.iter().enumerate() {
        match byte {
            b'0'..=b'9' if digits < LENGTH_MAX_DIGITS => {
                length = length.saturating_mul(10).saturating_add(usize::from(byte - b'0'));
                digits += 1;
                if length > limit {
                    return Err(NetstringError::TooLong { length, limit });
                }
            }
            b'0'..=b'9' => return Err(NetstringError::TooLong { length: usize::MAX, limit }),
            b':' if digits > 0 => {
                let start = offset + 1;
                let end = start + length;
                return match buf.get(end) {
                    None => Ok(None),
                    Some(b',') => Ok(Some(Frame { payload: start..end, consumed: end + 1 })),
                    Some(&byte) => Err(NetstringError::MissingComma { length, byte }),
                };
            }
            _ => return Err(NetstringError::BadLength { byte, offset }),
        }
    }
    Ok(None)
}

/// `payload` as a netstring.
pub fn encode(payload: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 8);
    out.extend_from_slice(payload.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(payload.as_bytes());
    out.push(b',');
    out
}

/// One socketmap request: `<name> <key>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    /// The map name: the last part of `socketmap:inet:host:port:NAME`.
    pub name: &'a str,
    /// The lookup key.
    pub key: &'a str,
}

/// Why a payload is not a request.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// Not UTF-8 text.
    #[error("socketmap: the request is not text")]
    NotText,
    /// No space between name and key, or an empty name or key.
    #[error("socketmap: a request is \"<name> <key>\", got {0:?}")]
    Malformed(String),
}

/// Splits a request payload at its first space (socketmap_table(5)).
pub fn parse_request(payload: &[u8]) -> Result<Request<'_>, RequestError> {
    let text = std::str::from_utf8(payload).map_err(|_| RequestError::NotText)?;
    match text.split_once(' ') {
        Some((name, key)) if !name.is_empty() && !key.is_empty() => Ok(Request { name, key }),
        _ => Err(RequestError::Malformed(text.chars().take(80).collect())),
    }
}

/// What an `smtp_tls_policy_maps` key names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicyKey {
    /// A policy domain to look up.
    Domain(DomainName),
    /// Not a policy domain: answer `NOTFOUND`.
    NotADomain(NotADomain),
}

/// Why a key names no policy domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotADomain {
    /// `.example.com`: Postfix's parent-domain probe. RFC 8461 §3.4: a policy applies to its
    /// own domain only, never to subdomains.
    ParentProbe,
    /// An IP address or `[192.0.2.1]`: RFC 8461 §3.4, "address literals are not supported".
    AddressLiteral,
    /// Not a valid domain name.
    Invalid,
}

impl fmt::Display for NotADomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ParentProbe => {
                "a parent-domain probe (RFC 8461 §3.4: policies do not apply to subdomains)"
            }
            Self::AddressLiteral => "an address literal (RFC 8461 §3.4: not supported)",
            Self::Invalid => "not a domain name",
        })
    }
}

/// The policy domain a Postfix TLS policy key names. Postfix sends the next-hop: the recipient
/// domain (`example.com`, maybe with a trailing dot or in upper case), a transport next-hop
/// verbatim (`[relay.example]:587`, whose policy domain is the relay's name: RFC 8461 §3.4, "the
/// domain of the smart host"), then parent probes `.example.com`.
pub fn policy_key(key: &str) -> PolicyKey {
    let key = key.trim();
    if key.starts_with('.') {
        return PolicyKey::NotADomain(NotADomain::ParentProbe);
    }
    // `[host]` or `[host]:port`; `host:port`.
    let host = match key.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((host, tail)) if tail.is_empty() || tail.starts_with(':') => host,
            _ => return PolicyKey::NotADomain(NotADomain::Invalid),
        },
        None => match key.rsplit_once(':') {
            Some((host, port))
                if !host.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) =>
            {
                host
            }
            _ => key,
        },
    };
    let host = host.strip_prefix("ipv6:").unwrap_or(host);
    if host.parse::<IpAddr>().is_ok() {
        return PolicyKey::NotADomain(NotADomain::AddressLiteral);
    }
    match DomainName::parse_ascii(host.strip_suffix('.').unwrap_or(host)) {
        Ok(d) => PolicyKey::Domain(d),
        Err(_) => match DomainName::from_user_input(host) {
            Ok(d) => PolicyKey::Domain(d),
            Err(_) => PolicyKey::NotADomain(NotADomain::Invalid),
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn frame(buf: &[u8]) -> Result<Option<Frame>, NetstringError> {
        decode(buf, QUERY_MAX_BYTES)
    }

    #[test]
    fn netstrings_whole_partial_and_pipelined() {
        let buf = b"17:postfix good.test,7:x y.com,";
        let f = frame(buf).unwrap().unwrap();
        assert_eq!(&buf[f.payload.clone()], b"postfix good.test");
        let f2 = frame(&buf[f.consumed..]).unwrap().unwrap();
        assert_eq!(&buf[f.consumed..][f2.payload.clone()], b"x y.com");
        assert_eq!(f.consumed + f2.consumed, buf.len());
        for cut in 0..21 {
            assert_eq!(frame(&buf[..cut]), Ok(None), "{cut}");
        }
        assert_eq!(frame(b"0:,").unwrap().unwrap().consumed, 3);
        assert_eq!(encode("OK secure"), b"9:OK secure,");
    }

    #[test]
    fn malformed_netstrings() {
        assert_eq!(frame(b"x:"), Err(NetstringError::BadLength { byte: b'x', offset: 0 }));
        assert_eq!(frame(b":"), Err(NetstringError::BadLength { byte: b':', offset: 0 }));
        assert_eq!(frame(b"3:abc;"), Err(NetstringError::MissingComma { length: 3, byte: b';' }));
        assert!(matches!(frame(b"10001:"), Err(NetstringError::TooLong { length: 10001, .. })));
        assert!(frame(b"10000:").unwrap().is_none());
        assert!(matches!(frame(b"000000000000000001:"), Err(NetstringError::TooLong { .. })));
    }

    #[test]
    fn requests_split_at_the_first_space() {
        assert_eq!(
            parse_request(b"postfix example.com").unwrap(),
            Request { name: "postfix", key: "example.com" }
        );
        assert_eq!(parse_request(b"a b c").unwrap().key, "b c");
        assert!(parse_request(b"postfix").is_err());
        assert!(parse_request(b" example.com").is_err());
        assert_eq!(parse_request(b"p \xff"), Err(RequestError::NotText));
    }

    #[test]
    fn keys_as_postfix_sends_them() {
        let d = |s: &str| match policy_key(s) {
            PolicyKey::Domain(d) => d.as_str().to_owned(),
            PolicyKey::NotADomain(n) => format!("!{n:?}"),
        };
        assert_eq!(d("example.com"), "example.com");
        assert_eq!(d("Example.COM."), "example.com");
        assert_eq!(d("[relay.example]:587"), "relay.example");
        assert_eq!(d("[relay.example]"), "relay.example");
        assert_eq!(d("relay.example:25"), "relay.example");
        assert_eq!(d(".example.com"), "!ParentProbe");
        assert_eq!(d("[192.0.2.1]:25"), "!AddressLiteral");
        assert_eq!(d("[ipv6:2001:db8::1]"), "!AddressLiteral");
        assert_eq!(d("192.0.2.1"), "!AddressLiteral");
        assert_eq!(d("[unterminated"), "!Invalid");
        assert_eq!(d("bad_name!.com"), "!Invalid");
        assert_eq!(d("bücher.example"), "xn--bcher-kva.example");
    }
}
