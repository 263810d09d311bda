//! Where report messages come from: one message per file or on standard input, a maildir
//! (`new/` and `cur/`), an mbox, or report files (`.json`, `.json.gz`) as saved from a mail.

use std::io::Read;
use std::path::{Path, PathBuf};

use mtasts_proto::io_words as words;

/// One thing to ingest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// Where it came from, for messages: `FILE`, `DIR/new/NAME`, `FILE#3` (the third message
    /// of an mbox), `standard input`.
    pub origin: String,
    /// The bytes.
    pub bytes: Vec<u8>,
    /// A report file rather than a mail.
    pub report_file: bool,
    /// The maildir file it is, to move it once stored.
    pub maildir_file: Option<PathBuf>,
}

/// Reading an input failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {path}: {reason}")]
pub struct SourceError {
    /// The path.
    pub path: String,
    /// Why, in the OS's words.
    pub reason: String,
}

fn read_capped(mut r: impl Read, limit: usize, path: &str) -> Result<Vec<u8>, SourceError> {
    read_capped_sized(&mut r, limit, path, 0)
}

/// [`read_capped`] with the expected size (a file's length), to read it in one buffer.
fn read_capped_sized(
    mut r: impl Read,
    limit: usize,
    path: &str,
    expected: u64,
) -> Result<Vec<u8>, SourceError> {
    let hint = usize::try_from(expected).unwrap_or(usize::MAX).min(limit).saturating_add(1);
    let mut out = Vec::with_capacity(hint);
    r.by_ref()
        .take(u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| SourceError { path: path.into(), reason: words(&e) })?;
    Ok(out)
}

/// One input not read yet: a file of a maildir or directory is read when its turn comes (by
/// [`Pending::load`], on the thread that parses it), so reading overlaps parsing and storing
/// and a directory of a million messages is never all in memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    origin: String,
    what: What,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum What {
    /// A file of a maildir (moved once stored) or a directory of messages.
    File(PathBuf),
    /// Already read (standard input, a single file, an mbox's message).
    Read(Vec<u8>),
}

impl Pending {
    /// Where it comes from (as [`Item::origin`]).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Reads it (up to `limit + 1` bytes, for the intake to refuse it by size). A file that
    /// cannot be read (vanished, no permission) is its own error, not the directory's.
    pub fn load(self, limit: usize) -> Result<Item, Box<(Item, SourceError)>> {
        match self.what {
            What::Read(bytes) => Ok(one(self.origin, bytes, None)),
            What::File(path) => {
                let read = std::fs::File::open(&path).map(|f| {
                    let size = f.metadata().map(|m| m.len()).unwrap_or(0);
                    (f, size)
                });
                let result = match read {
                    Ok((file, size)) => read_capped_sized(file, limit, &self.origin, size),
                    Err(e) => Err(SourceError { path: self.origin.clone(), reason: words(&e) }),
                };
                match result {
                    Ok(bytes) => Ok(one(self.origin, bytes, Some(path))),
                    Err(e) => Err(Box::new((
                        Item {
                            origin: self.origin,
                            bytes: Vec::new(),
                            report_file: false,
                            maildir_file: Some(path),
                        },
                        e,
                    ))),
                }
            }
        }
    }
}

/// The inputs of `input` (`-` for standard input): a directory (maildir or not) is listed, its
/// files read later ([`Pending::load`]); standard input and a file (one message, an mbox, a
/// report file) are read now, a file up to 64 × `limit` (an mbox holds many messages).
pub fn plan(input: &str, limit: usize) -> Result<Vec<Pending>, SourceError> {
    if input == "-" {
        let bytes = read_capped(std::io::stdin().lock(), limit, "standard input")?;
        return Ok(vec![Pending { origin: "standard input".into(), what: What::Read(bytes) }]);
    }
    let path = Path::new(input);
    let err = |e: std::io::Error| SourceError { path: input.into(), reason: words(&e) };
    let meta = std::fs::metadata(path).map_err(err)?;
    if meta.is_dir() {
        return maildir(path);
    }
    let file = std::fs::File::open(path).map_err(err)?;
    let bytes = read_capped(file, limit.saturating_mul(64), input)?;
    if bytes.starts_with(b"From ") {
        return Ok(mbox(input, &bytes)
            .into_iter()
            .map(|(origin, m)| Pending { origin, what: What::Read(m) })
            .collect());
    }
    Ok(vec![Pending { origin: input.into(), what: What::Read(bytes) }])
}

/// Every input of `input`, read ([`plan`], then [`Pending::load`] of each).
pub fn items(input: &str, limit: usize) -> Result<Vec<Item>, SourceError> {
    plan(input, limit)?.into_iter().map(|p| p.load(limit).map_err(|failed| failed.1)).collect()
}

fn one(origin: String, bytes: Vec<u8>, maildir_file: Option<PathBuf>) -> Item {
    let report_file = crate::intake::looks_like_report_file(&bytes);
    Item { origin, bytes, report_file, maildir_file }
}

/// A maildir: every file in `new/` and `cur/` (a directory without them is read as a
/// directory of messages), in name order.
fn maildir(dir: &Path) -> Result<Vec<Pending>, SourceError> {
    let subdirs: Vec<PathBuf> =
        ["new", "cur"].iter().map(|s| dir.join(s)).filter(|p| p.is_dir()).collect();
    let dirs = if subdirs.is_empty() { vec![dir.to_path_buf()] } else { subdirs };
    let mut out = Vec::new();
    for d in dirs {
        let shown = d.display().to_string();
        let mut names: Vec<PathBuf> = std::fs::read_dir(&d)
            .map_err(|e| SourceError { path: shown.clone(), reason: words(&e) })?
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file() || t.is_symlink()))
            .map(|e| e.path())
            .collect();
        names.sort();
        out.extend(
            names
                .into_iter()
                .map(|p| Pending { origin: p.display().to_string(), what: What::File(p) }),
        );
    }
    Ok(out)
}

/// The messages of an mbox (mboxrd: a line `From ` starts a message; `>From ` lines are
/// unquoted one level).
fn mbox(name: &str, bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut messages: Vec<Vec<u8>> = Vec::new();
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b"From ") {
            messages.push(Vec::new());
            continue;
        }
        let Some(current) = messages.last_mut() else { continue };
        let quoted = line
            .iter()
            .position(|&b| b != b'>')
            .is_some_and(|n| n > 0 && line[n..].starts_with(b"From "));
        current.extend_from_slice(if quoted { &line[1..] } else { line });
    }
    messages.into_iter().enumerate().map(|(i, m)| (format!("{name}#{}", i + 1), m)).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn mbox_splits_and_unquotes() {
        let m = b"From a@b Mon Jan  1 00:00:00 2026\nSubject: one\n\n>From here\n\nFrom c@d Tue\nSubject: two\n\nbody\n";
        let items = mbox("box", m);
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].0, "box#1");
        assert_eq!(items[0].1, b"Subject: one\n\nFrom here\n\n");
        assert_eq!(items[1].1, b"Subject: two\n\nbody\n");
    }
}
