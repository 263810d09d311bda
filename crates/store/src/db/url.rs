//! Database URLs: which backend, and one way to show a URL without its secrets.

use std::fmt;
use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;

use super::{Backend, DbError};

/// What [`DatabaseUrl`]'s `Display` shows instead of a secret.
pub const REDACTED: &str = "***";

/// A parsed database URL: `sqlite://PATH`, `sqlite:PATH`, `sqlite::memory:`,
/// `postgres://…` or `postgresql://…`.
///
/// `Display` and `Debug` never show secrets: the password of the user-info
/// (`postgres://u:secret@h/db` → `postgres://u:***@h/db`) and the value of every query
/// parameter whose name says it is one (`?password=…`, `?sslpassword=…`, `…secret…`,
/// `…token…`) are replaced by [`REDACTED`]. [`DatabaseUrl::expose`] gives the full text, for
/// connecting only.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    raw: String,
    backend: Backend,
}

impl DatabaseUrl {
    /// Parses and checks `url` (the backend's own option parser must accept it).
    pub fn parse(url: &str) -> Result<Self, DbError> {
        let invalid = |reason: String| DbError::InvalidUrl { url: redact(url), reason };
        let backend = if url.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(url).map_err(|e| invalid(e.to_string()))?;
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            PgConnectOptions::from_str(url).map_err(|e| invalid(e.to_string()))?;
            Backend::Postgres
        } else {
            return Err(DbError::UnsupportedUrl(redact(url)));
        };
        Ok(Self { raw: url.to_owned(), backend })
    }

    /// The backend the URL names.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A private in-memory SQLite database (`sqlite::memory:`, `?mode=memory`).
    pub fn is_memory(&self) -> bool {
        self.backend == Backend::Sqlite
            && (self.raw.starts_with("sqlite::memory:") || self.raw.contains("mode=memory"))
    }

    /// The URL with its secrets, for handing to the database driver. Never print it; print
    /// the `DatabaseUrl` itself.
    pub fn expose(&self) -> &str {
        &self.raw
    }
}

impl FromStr for DatabaseUrl {
    type Err = DbError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact(&self.raw))
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DatabaseUrl").field(&redact(&self.raw)).finish()
    }
}

/// Whether a query parameter named `key` (percent-encoded as written) holds a secret.
fn secret_param(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["password", "passwd", "secret", "token"].iter().any(|s| key.contains(s))
}

/// `url` with the user-info password and secret query parameters replaced by [`REDACTED`].
/// Works on any text, URL or not (it is also used for URLs that did not parse).
pub(crate) fn redact(url: &str) -> String {
    // Split off the fragment and the query; redact the authority's password.
    let (before_fragment, fragment) = match url.find('#') {
        Some(i) => (&url[..i], Some(&url[i + 1..])),
        None => (url, None),
    };
    let (base, query) = match before_fragment.find('?') {
        Some(i) => (&before_fragment[..i], Some(&before_fragment[i + 1..])),
        None => (before_fragment, None),
    };
    let mut out = String::with_capacity(url.len());
    match base.split_once("://") {
        Some((scheme, rest)) => {
            out.push_str(scheme);
            out.push_str("://");
            let authority_end = rest.find('/').unwrap_or(rest.len());
            let (authority, path) = rest.split_at(authority_end);
            // The last `@` ends the user-info: an unencoded `@` in a password stays hidden.
            match authority.rfind('@') {
                Some(at) => {
                    let (userinfo, host) = authority.split_at(at);
                    match userinfo.split_once(':') {
                        Some((user, _password)) => {
                            out.push_str(user);
                            out.push(':');
                            out.push_str(REDACTED);
                        }
                        None => out.push_str(userinfo),
                    }
                    out.push_str(host);
                }
                None => out.push_str(authority),
            }
            out.push_str(path);
        }
        None => out.push_str(base),
    }
    if let Some(query) = query {
        out.push('?');
        let params: Vec<String> = query
            .split('&')
            .map(|param| match param.split_once('=') {
                Some((key, _)) if secret_param(key) => format!("{key}={REDACTED}"),
                _ => param.to_owned(),
            })
            .collect();
        out.push_str(&params.join("&"));
    }
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn shown(url: &str) -> String {
        DatabaseUrl::parse(url).unwrap().to_string()
    }

    #[test]
    fn password_in_userinfo_is_redacted() {
        assert_eq!(shown("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(shown("postgresql://u:secret@h:5433/db"), "postgresql://u:***@h:5433/db");
        assert_eq!(shown("postgres://u:@h/db"), "postgres://u:***@h/db");
    }

    #[test]
    fn no_password_is_shown_unchanged() {
        assert_eq!(shown("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(shown("postgres://h/db"), "postgres://h/db");
        assert_eq!(shown("postgres://127.0.0.1:5432/test"), "postgres://127.0.0.1:5432/test");
    }

    #[test]
    fn sqlite_is_shown_unchanged() {
        assert_eq!(shown("sqlite://mtasts-scan.db"), "sqlite://mtasts-scan.db");
        assert_eq!(shown("sqlite:/tmp/x.db"), "sqlite:/tmp/x.db");
        assert_eq!(shown("sqlite::memory:"), "sqlite::memory:");
        assert_eq!(shown("sqlite://x.db?mode=rwc"), "sqlite://x.db?mode=rwc");
    }

    #[test]
    fn url_encoded_characters() {
        // An encoded `@`, `:` or `/` in the password: still one password, all hidden.
        assert_eq!(shown("postgres://u:p%40ss%3Aw%2Fd@h/db"), "postgres://u:***@h/db");
        // An encoded user name stays as written.
        assert_eq!(shown("postgres://us%40er:pw@h/db"), "postgres://us%40er:***@h/db");
        // Not even parseable, but a raw `@` in a password must not leak what follows it.
        assert_eq!(redact("postgres://u:p@ss@h/db"), "postgres://u:***@h/db");
    }

    #[test]
    fn secret_query_parameters_are_redacted() {
        assert_eq!(
            shown("postgres://u@h/db?password=hunter2&sslmode=disable"),
            "postgres://u@h/db?password=***&sslmode=disable"
        );
        assert_eq!(
            shown("postgres://u:a@h/db?sslmode=require&sslpassword=k&application_name=x"),
            "postgres://u:***@h/db?sslmode=require&sslpassword=***&application_name=x"
        );
        assert_eq!(
            shown("postgres://h/db?options[search_path]=s1"),
            "postgres://h/db?options[search_path]=s1"
        );
    }

    #[test]
    fn debug_is_redacted_too() {
        let url = DatabaseUrl::parse("postgres://u:secret@h/db?password=x").unwrap();
        let debug = format!("{url:?}");
        assert!(!debug.contains("secret") && debug.contains("u:***@h"), "{debug}");
        assert_eq!(url.expose(), "postgres://u:secret@h/db?password=x");
    }

    #[test]
    fn invalid_urls_are_redacted_too() {
        match DatabaseUrl::parse("postgres://u:secret@h:notaport/db") {
            Err(e @ DbError::InvalidUrl { .. }) => {
                let text = e.to_string();
                assert!(
                    text.contains("postgres://u:***@h:notaport/db") && !text.contains("secret")
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn backends_and_unsupported_urls() {
        assert_eq!(DatabaseUrl::parse("sqlite::memory:").unwrap().backend(), Backend::Sqlite);
        assert!(DatabaseUrl::parse("sqlite::memory:").unwrap().is_memory());
        assert!(!DatabaseUrl::parse("sqlite://x.db").unwrap().is_memory());
        assert_eq!(DatabaseUrl::parse("postgresql://h/db").unwrap().backend(), Backend::Postgres);
        for url in ["mysql://root:hunter2@localhost/db", "", "scan.db", "http://x", "sqlite3://x"] {
            match DatabaseUrl::parse(url) {
                Err(DbError::UnsupportedUrl(shown)) => assert!(!shown.contains("hunter2")),
                other => panic!("{url:?}: {other:?}"),
            }
        }
    }
}
