//! Reading a domain list as a stream: one domain per line (blank lines and `#` comments
//! skipped), or one column of a CSV file. The list is never held in memory whole; every line
//! becomes either a domain (lower-case A-labels) or an invalid entry with the reason.

use std::io::{BufRead, Read};

use mtasts_proto::DomainName;

/// Longest input line considered (a longer line is recorded as invalid and skipped).
pub const MAX_LINE: usize = 4096;

/// One entry of the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InputLine {
    /// A valid domain, lower-case A-labels, and the text as the user wrote it when that differs
    /// (`bücher.example`, `Example.COM.`): reports keep what the user wrote (issue 10).
    Domain(String, Option<String>),
    /// A line that is not a domain name.
    Invalid {
        /// 1-based line number.
        line: u64,
        /// The text (cut to 255 characters).
        raw: String,
        /// Why it is not a domain.
        reason: String,
    },
}

/// Why the input cannot be read at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// Reading failed.
    #[error("reading the domain list: {0}")]
    Io(#[from] std::io::Error),
    /// `--column` names a column the CSV header does not have.
    #[error("the CSV header has no column {column:?} (columns: {header})")]
    NoSuchColumn {
        /// The column asked for.
        column: String,
        /// The header line.
        header: String,
    },
}

/// Streams [`InputLine`]s from a reader.
pub struct InputReader<R> {
    reader: R,
    column: Option<String>,
    column_index: Option<usize>,
    line_no: u64,
    buf: Vec<u8>,
}

impl<R: BufRead> InputReader<R> {
    /// Plain lists: one domain per line.
    pub fn lines(reader: R) -> Self {
        Self { reader, column: None, column_index: None, line_no: 0, buf: Vec::new() }
    }

    /// CSV with a header line; domains are taken from the column named `column`.
    pub fn csv(reader: R, column: &str) -> Self {
        Self {
            reader,
            column: Some(column.to_owned()),
            column_index: None,
            line_no: 0,
            buf: Vec::new(),
        }
    }

    /// For CSV input, reads the header line now (skipping blank and `#` lines), so a `--column`
    /// the header lacks is an error before anything else happens (no run is created for it).
    /// Plain lists: nothing to do.
    pub fn read_header(&mut self) -> Result<(), InputError> {
        let Some(column) = self.column.clone() else { return Ok(()) };
        while self.column_index.is_none() {
            let Some((text, _)) = self.next_raw()? else {
                return Err(InputError::NoSuchColumn {
                    column,
                    header: "none: the file is empty".into(),
                });
            };
            let trimmed = text.trim().trim_start_matches('\u{feff}');
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            self.take_header(&column, trimmed)?;
        }
        Ok(())
    }

    /// Finds `column` in the header line `header`.
    fn take_header(&mut self, column: &str, header: &str) -> Result<(), InputError> {
        match csv_fields(header).iter().position(|h| h.trim().eq_ignore_ascii_case(column)) {
            Some(i) => {
                self.column_index = Some(i);
                Ok(())
            }
            None => Err(InputError::NoSuchColumn {
                column: column.to_owned(),
                header: header.to_owned(),
            }),
        }
    }

    /// The next raw line, at most [`MAX_LINE`] bytes kept; `Ok(None)` at the end. The bool says
    /// whether the line was too long.
    fn next_raw(&mut self) -> std::io::Result<Option<(String, bool)>> {
        self.buf.clear();
        let limit = u64::try_from(MAX_LINE + 1).unwrap_or(u64::MAX);
        let n = self.reader.by_ref().take(limit).read_until(b'\n', &mut self.buf)?;
        if n == 0 {
            return Ok(None);
        }
        self.line_no += 1;
        let mut too_long = false;
        if self.buf.last() != Some(&b'\n') && self.buf.len() > MAX_LINE {
            too_long = true;
            // Skip the rest of the line without keeping it.
            let mut sink = Vec::new();
            loop {
                sink.clear();
                let m = self.reader.by_ref().take(64 * 1024).read_until(b'\n', &mut sink)?;
                if m == 0 || sink.last() == Some(&b'\n') {
                    break;
                }
            }
        }
        let text = String::from_utf8_lossy(&self.buf).trim_end_matches(['\r', '\n']).to_owned();
        Ok(Some((text, too_long)))
    }

    fn invalid(&self, raw: &str, reason: impl Into<String>) -> InputLine {
        InputLine::Invalid {
            line: self.line_no,
            raw: raw.chars().take(255).collect(),
            reason: reason.into(),
        }
    }
}

/// Splits one CSV record (RFC 4180 quoting; no embedded newlines).
pub fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', true) => quoted = false,
            ('"', false) if field.is_empty() => quoted = true,
            (',', false) => fields.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    fields.push(field);
    fields
}

impl<R: BufRead> Iterator for InputReader<R> {
    type Item = Result<InputLine, InputError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (text, too_long) = match self.next_raw() {
                Ok(Some(x)) => x,
                Ok(None) => return None,
                Err(e) => return Some(Err(e.into())),
            };
            if too_long {
                return Some(Ok(self.invalid(&text, format!("line longer than {MAX_LINE} bytes"))));
            }
            let trimmed = text.trim().trim_start_matches('\u{feff}');
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let candidate = if let Some(column) = &self.column {
                match self.column_index {
                    None => {
                        let column = column.clone();
                        match self.take_header(&column, trimmed) {
                            Ok(()) => continue,
                            Err(e) => return Some(Err(e)),
                        }
                    }
                    Some(i) => match csv_fields(trimmed).into_iter().nth(i) {
                        Some(v) => v.trim().to_owned(),
                        None => {
                            return Some(Ok(
                                self.invalid(trimmed, format!("no column {} in this row", i + 1))
                            ));
                        }
                    },
                }
            } else {
                trimmed.to_owned()
            };
            if candidate.is_empty() {
                return Some(Ok(self.invalid(trimmed, "empty domain")));
            }
            return Some(Ok(match DomainName::from_user_input(&candidate) {
                Ok(d) => {
                    let typed = (candidate != d.as_str()).then(|| candidate.clone());
                    InputLine::Domain(d.as_str().to_owned(), typed)
                }
                Err(e) => self.invalid(&candidate, e.to_string()),
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn read(input: &str) -> Vec<InputLine> {
        InputReader::lines(input.as_bytes()).map(Result::unwrap).collect()
    }

    #[test]
    fn lines_comments_idn_and_garbage() {
        let got =
            read("# list\n\nExample.COM.\n  bücher.example \r\n192.0.2.1\nnot a domain\nx..y\n");
        assert_eq!(got[0], InputLine::Domain("example.com".into(), Some("Example.COM.".into())));
        assert_eq!(
            got[1],
            InputLine::Domain("xn--bcher-kva.example".into(), Some("bücher.example".into()))
        );
        assert!(matches!(&got[2], InputLine::Invalid { line: 5, raw, .. } if raw == "192.0.2.1"));
        assert!(matches!(&got[3], InputLine::Invalid { line: 6, .. }));
        assert!(matches!(&got[4], InputLine::Invalid { line: 7, .. }));
        assert_eq!(got.len(), 5);
    }

    #[test]
    fn overlong_lines_and_labels() {
        let long_label = format!("{}.example", "a".repeat(64));
        let huge = "b".repeat(MAX_LINE * 3);
        let got = read(&format!("{long_label}\n{huge}\nok.example\n"));
        assert!(matches!(&got[0], InputLine::Invalid { .. }));
        assert!(
            matches!(&got[1], InputLine::Invalid { reason, .. } if reason.contains("longer than"))
        );
        assert_eq!(got[2], InputLine::Domain("ok.example".into(), None));
    }

    #[test]
    fn csv_column_with_quotes() {
        let input = "rank,\"Domain\",note\n1,example.com,x\n2,\"b.example\",\"a, b\"\n3\n";
        let got: Vec<_> =
            InputReader::csv(input.as_bytes(), "domain").map(Result::unwrap).collect();
        assert_eq!(got[0], InputLine::Domain("example.com".into(), None));
        assert_eq!(got[1], InputLine::Domain("b.example".into(), None));
        assert!(matches!(&got[2], InputLine::Invalid { .. }));
        let err = InputReader::csv(input.as_bytes(), "host").next().unwrap();
        assert!(matches!(err, Err(InputError::NoSuchColumn { .. })));
        assert_eq!(csv_fields("a,\"b \"\"q\"\" c\",d"), vec!["a", "b \"q\" c", "d"]);
    }
}
