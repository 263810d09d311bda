//! SMTP reply parsing (RFC 5321 §4.2), without I/O.
//!
//! A reply is one or more lines `CODE-text` ending with a line `CODE text` (or bare `CODE`).
//! [`ReplyParser`] is fed bytes as they arrive and yields a [`Reply`] once one is complete, with
//! hard limits so a hostile server cannot make the client buffer without bound.

/// Longest reply line accepted. RFC 5321 §4.5.3.1.5 sets 512 octets for a reply line; real
/// servers exceed it with long EHLO keywords, so allow more but stay bounded.
pub const MAX_REPLY_LINE: usize = 4096;

/// Most lines in one multi-line reply (a generous bound for EHLO keyword lists).
pub const MAX_REPLY_LINES: usize = 128;

/// A complete SMTP reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit code.
    pub code: u16,
    /// The text of each line, without code and separator.
    pub lines: Vec<String>,
}

impl Reply {
    /// 2xx.
    pub fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// EHLO keywords (the lines after the greeting), upper-cased first word of each.
    pub fn ehlo_keywords(&self) -> Vec<String> {
        self.lines
            .iter()
            .skip(1)
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_ascii_uppercase)
            .collect()
    }

    /// Whether an EHLO reply offers STARTTLS (RFC 3207 §4).
    pub fn offers_starttls(&self) -> bool {
        self.ehlo_keywords().iter().any(|k| k == "STARTTLS")
    }

    /// The reply as one line of text, for reports.
    pub fn text(&self) -> String {
        format!("{} {}", self.code, self.lines.join(" / "))
    }
}

/// Why bytes from the server are not an SMTP reply.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplyError {
    /// A line longer than [`MAX_REPLY_LINE`].
    #[error("reply line longer than {MAX_REPLY_LINE} bytes")]
    LineTooLong,
    /// More than [`MAX_REPLY_LINES`] lines.
    #[error("reply longer than {MAX_REPLY_LINES} lines")]
    TooManyLines,
    /// A line that does not start with three digits and a separator (RFC 5321 §4.2).
    #[error("malformed reply line (RFC 5321 §4.2): {line:?}")]
    Malformed {
        /// The line, lossily decoded.
        line: String,
    },
    /// Lines of one reply carry different codes (RFC 5321 §4.2.1).
    #[error("reply lines carry different codes: {first} then {then}")]
    CodeChanged {
        /// The code of the first line.
        first: u16,
        /// The differing code.
        then: u16,
    },
}

/// Incremental reply parser.
#[derive(Debug, Default)]
pub struct ReplyParser {
    buf: Vec<u8>,
    code: Option<u16>,
    lines: Vec<String>,
}

impl ReplyParser {
    /// Adds bytes received from the server.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Takes the next complete reply out of the buffer, if there is one.
    pub fn next_reply(&mut self) -> Result<Option<Reply>, ReplyError> {
        loop {
            let Some(end) = self.buf.iter().position(|&b| b == b'\n') else {
                if self.buf.len() > MAX_REPLY_LINE {
                    return Err(ReplyError::LineTooLong);
                }
                return Ok(None);
            };
            if end > MAX_REPLY_LINE {
                return Err(ReplyError::LineTooLong);
            }
            let raw: Vec<u8> = self.buf.drain(..=end).collect();
            let line = String::from_utf8_lossy(&raw);
            let line = line.trim_end_matches(['\r', '\n']);
            let bytes = line.as_bytes();
            let malformed = || ReplyError::Malformed { line: line.to_owned() };
            if bytes.len() < 3 || !bytes[..3].iter().all(u8::is_ascii_digit) {
                return Err(malformed());
            }
            let code: u16 = line[..3].parse().map_err(|_| malformed())?;
            let (last, text) = match bytes.get(3) {
                None => (true, ""),
                Some(b' ') => (true, &line[4..]),
                Some(b'-') => (false, &line[4..]),
                Some(_) => return Err(malformed()),
            };
            match self.code {
                Some(first) if first != code => {
                    return Err(ReplyError::CodeChanged { first, then: code });
                }
                _ => self.code = Some(code),
            }
            self.lines.push(text.to_owned());
            if self.lines.len() > MAX_REPLY_LINES {
                return Err(ReplyError::TooManyLines);
            }
            if last {
                self.code = None;
                return Ok(Some(Reply { code, lines: std::mem::take(&mut self.lines) }));
            }
        }
    }

    /// Bytes received but not yet consumed (data sent ahead of a STARTTLS reply would be a
    /// command-injection attempt, CVE-2011-0411 style; callers refuse to go on if any remain).
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse_all(input: &[u8]) -> Result<Vec<Reply>, ReplyError> {
        let mut p = ReplyParser::default();
        p.push(input);
        let mut out = Vec::new();
        while let Some(r) = p.next_reply()? {
            out.push(r);
        }
        Ok(out)
    }

    #[test]
    fn single_and_multi_line() {
        let r = parse_all(
            b"220 mx.example ESMTP\r\n250-mx.example\r\n250-PIPELINING\r\n250 STARTTLS\r\n",
        )
        .unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].code, 220);
        assert_eq!(r[1].lines, vec!["mx.example", "PIPELINING", "STARTTLS"]);
        assert!(r[1].offers_starttls());
        assert!(!r[0].offers_starttls());
    }

    #[test]
    fn starttls_must_be_a_keyword_not_the_greeting() {
        let r = parse_all(b"250-STARTTLS.example greets you\r\n250 SIZE 100\r\n").unwrap();
        assert!(!r[0].offers_starttls());
        let r = parse_all(b"250-mx\r\n250 starttls\r\n").unwrap();
        assert!(r[0].offers_starttls());
    }

    #[test]
    fn bare_code_and_lf_only() {
        let r = parse_all(b"250\n").unwrap();
        assert_eq!(r[0], Reply { code: 250, lines: vec![String::new()] });
    }

    #[test]
    fn partial_input_waits() {
        let mut p = ReplyParser::default();
        p.push(b"250-a\r\n250 b");
        assert_eq!(p.next_reply().unwrap(), None);
        p.push(b"\r\n");
        assert_eq!(p.next_reply().unwrap().unwrap().lines, vec!["a", "b"]);
    }

    #[test]
    fn malformed_lines_are_errors() {
        assert!(matches!(parse_all(b"hello\r\n"), Err(ReplyError::Malformed { .. })));
        assert!(matches!(parse_all(b"25\r\n"), Err(ReplyError::Malformed { .. })));
        assert!(matches!(parse_all(b"250x\r\n"), Err(ReplyError::Malformed { .. })));
        assert!(matches!(
            parse_all(b"250-a\r\n251 b\r\n"),
            Err(ReplyError::CodeChanged { first: 250, then: 251 })
        ));
    }

    #[test]
    fn limits_hold_at_the_boundary() {
        let mut ok = b"250 ".to_vec();
        ok.extend(std::iter::repeat_n(b'a', MAX_REPLY_LINE - 4));
        ok.push(b'\n');
        assert!(parse_all(&ok).is_ok());
        let mut long = b"250 ".to_vec();
        long.extend(std::iter::repeat_n(b'a', MAX_REPLY_LINE + 1));
        assert_eq!(parse_all(&long), Err(ReplyError::LineTooLong));
        let many: Vec<u8> = "250-x\r\n".repeat(MAX_REPLY_LINES + 1).into_bytes();
        assert_eq!(parse_all(&many), Err(ReplyError::TooManyLines));
        let exact: Vec<u8> =
            format!("{}250 x\r\n", "250-x\r\n".repeat(MAX_REPLY_LINES - 1)).into_bytes();
        assert_eq!(parse_all(&exact).unwrap()[0].lines.len(), MAX_REPLY_LINES);
    }
}
