//! Database URLs, as Ironic's `[database] connection` option spells them, and
//! opening the store one names.
//!
//! Ironic takes SQLAlchemy URLs, so operators will paste those; we accept them
//! and a few forms of our own:
//!
//! | URL | Store |
//! |---|---|
//! | `postgresql://user:pass@host:5432/db`, `postgres://…` | PostgreSQL |
//! | `postgresql+psycopg2://…` (any `+driver`) | PostgreSQL; the `+driver` is dropped (the driver is ours, not psycopg2) |
//! | `sqlite:////var/lib/ironledger/ironledger.db` | SQLite file `/var/lib/ironledger/ironledger.db` |
//! | `sqlite:///ironledger.db` | SQLite file `ironledger.db`, relative to the working directory |
//! | `sqlite:ironledger.db` | the same (sqlx's spelling) |
//! | `memory`, `memory://`, `sqlite://`, `sqlite:///:memory:`, `sqlite::memory:` | in-memory (nothing is kept) |
//!
//! SQLAlchemy's in-memory SQLite URLs map to the memory store: an in-memory SQLite
//! database cannot be shared by our read and write pools, and the memory store
//! has exactly the same semantics.
//!
//! Anything else (e.g. `mysql+pymysql://…`, which Ironic supports) is refused with
//! a message listing what is supported. A URL's password is never shown: `Display`
//! and `Debug` mask it.

use super::bridge::Repo;
use super::memory::MemoryStore;
use super::postgres::PostgresStore;
use super::sqlite::SqliteStore;
use super::{ClaimFn, LogStore, StoreError};
use sqlx::PgPool;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

/// Which store a `[database] connection` URL names.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// The in-memory store.
    Memory,
    /// A SQLite database file (absolute, or relative to the working directory).
    Sqlite(PathBuf),
    /// A PostgreSQL URL as sqlx takes it: `postgresql://…` or `postgres://…`, with
    /// any SQLAlchemy `+driver` removed and the scheme lowercased. Holds the
    /// password: print it with `Display`, which masks it.
    Postgres(String),
}

const SUPPORTED: &str = "supported are postgresql://user:password@host:port/dbname \
     (also postgres:// and postgresql+<driver>://), sqlite:////absolute/path.db, \
     sqlite:///relative/path.db and memory";

impl DatabaseUrl {
    /// Parses a connection URL (see the module docs for the accepted forms).
    /// The error message is safe to show: it never contains a password.
    pub fn parse(url: &str) -> Result<Self, String> {
        let url = url.trim();
        if url.is_empty() {
            return Err(format!("empty database URL; {SUPPORTED}"));
        }
        let (scheme, rest, has_slashes) = match url.split_once("://") {
            Some((scheme, rest)) => (scheme, rest, true),
            None => match url.split_once(':') {
                Some((scheme, rest)) => (scheme, rest, false),
                None => (url, "", false),
            },
        };
        let scheme = scheme.to_ascii_lowercase();
        // SQLAlchemy's "dialect+driver": the driver is a Python module; ignore it.
        let dialect = scheme.split('+').next().unwrap_or_default();
        match dialect {
            "memory" if rest.is_empty() => Ok(Self::Memory),
            "postgresql" | "postgres" if has_slashes => {
                Ok(Self::Postgres(format!("{dialect}://{rest}")))
            }
            "sqlite" => Self::parse_sqlite(rest, has_slashes, url),
            _ => Err(format!(
                "unsupported database URL {}: {SUPPORTED}",
                mask_password(url)
            )),
        }
    }

    /// `rest` is what follows `sqlite://` (if `has_slashes`) or `sqlite:`.
    fn parse_sqlite(rest: &str, has_slashes: bool, url: &str) -> Result<Self, String> {
        // SQLAlchemy passes query parameters to the Python driver; none apply here.
        let rest = rest.split_once('?').map_or(rest, |(path, _)| path);
        let path = if has_slashes {
            match rest.strip_prefix('/') {
                Some(path) => path,
                // sqlite:// alone is SQLAlchemy's in-memory database.
                None if rest.is_empty() => return Ok(Self::Memory),
                // sqlite://name.db: SQLAlchemy refuses this (there is no host); so do
                // we rather than guess whether a relative or absolute path was meant.
                None => {
                    return Err(format!(
                        "invalid SQLite URL {url:?}: use sqlite:///{rest} for a relative \
                         path or sqlite:////{rest} for an absolute one"
                    ))
                }
            }
        } else {
            rest
        };
        match path {
            "" | ":memory:" => Ok(Self::Memory),
            path => Ok(Self::Sqlite(PathBuf::from(path))),
        }
    }

    /// `memory`, `sqlite` or `postgres`, like [`LogStore::backend`].
    pub fn backend(&self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }
}

impl FromStr for DatabaseUrl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::parse(s)
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Memory => f.write_str("memory"),
            // sqlite:/// + "rel/x.db" or + "/abs/x.db" gives the SQLAlchemy spelling back.
            Self::Sqlite(path) => write!(f, "sqlite:///{}", path.display()),
            Self::Postgres(url) => f.write_str(&mask_password(url)),
        }
    }
}

/// Debug must not leak the password either (configs get logged with `{:?}`).
impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

/// Replaces the password in `scheme://user:password@host/…` and any
/// `password=…` query parameter by `***`. Leaves everything else as it was.
pub fn mask_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    // The authority ends at the first '/', '?' or '#'.
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => kv.to_string(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// An opened store, and its PostgreSQL pool when it has one (for tests and
/// tools that need raw SQL).
#[derive(Clone)]
pub struct Opened {
    pub store: Arc<dyn LogStore>,
    /// Set for PostgreSQL: the pool the store uses.
    pub pg_pool: Option<PgPool>,
}

impl Opened {
    /// A cqrs-es repository over this store.
    pub fn repo(&self, claims: ClaimFn) -> Repo {
        Repo::new(self.store.clone(), claims)
    }
}

/// Opens the store `url` names, creating the SQLite file and applying the schema
/// migrations as needed.
pub async fn open(url: &DatabaseUrl) -> Result<Opened, StoreError> {
    Ok(match url {
        DatabaseUrl::Memory => Opened {
            store: Arc::new(MemoryStore::new()),
            pg_pool: None,
        },
        DatabaseUrl::Sqlite(path) => Opened {
            store: Arc::new(SqliteStore::open(path).await?),
            pg_pool: None,
        },
        DatabaseUrl::Postgres(url) => {
            let store = PostgresStore::connect(url).await?;
            Opened {
                pg_pool: Some(store.pool().clone()),
                store: Arc::new(store),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Compile-time check: opening a store can run in a spawned task (its future is
    /// `Send` for every lifetime, which sqlx's `RawSql::execute` used to break).
    #[allow(dead_code)]
    fn open_is_spawnable(url: DatabaseUrl) {
        drop(tokio::spawn(async move { open(&url).await.map(|_| ()) }));
    }

    fn parse(s: &str) -> DatabaseUrl {
        DatabaseUrl::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn postgres_spellings() {
        let pg = |u: &str| DatabaseUrl::Postgres(u.to_string());
        assert_eq!(
            parse("postgresql://u:p@db:5432/ironic"),
            pg("postgresql://u:p@db:5432/ironic")
        );
        assert_eq!(
            parse("postgres://u:p@db:5432/ironic"),
            pg("postgres://u:p@db:5432/ironic")
        );
        // SQLAlchemy's driver suffix is dropped; the scheme is lowercased.
        assert_eq!(
            parse("postgresql+psycopg2://u:p@db:5432/ironic"),
            pg("postgresql://u:p@db:5432/ironic")
        );
        assert_eq!(
            parse("PostgreSQL+asyncpg://u:p@db:5432/ironic"),
            pg("postgresql://u:p@db:5432/ironic")
        );
        assert_eq!(
            parse("  postgresql://u:p@db:5432/ironic\n"),
            pg("postgresql://u:p@db:5432/ironic")
        );
        assert_eq!(
            parse("postgresql://ironic@/ironic?host=/var/run/postgresql"),
            pg("postgresql://ironic@/ironic?host=/var/run/postgresql")
        );
    }

    #[test]
    fn sqlite_paths() {
        assert_eq!(
            parse("sqlite:////var/lib/ironledger/x.db"),
            DatabaseUrl::Sqlite("/var/lib/ironledger/x.db".into())
        );
        assert_eq!(parse("sqlite:///x.db"), DatabaseUrl::Sqlite("x.db".into()));
        assert_eq!(
            parse("sqlite:///data/x.db"),
            DatabaseUrl::Sqlite("data/x.db".into())
        );
        assert_eq!(
            parse("sqlite+pysqlite:///x.db?timeout=5"),
            DatabaseUrl::Sqlite("x.db".into())
        );
        assert_eq!(parse("sqlite:x.db"), DatabaseUrl::Sqlite("x.db".into()));
        match parse("sqlite:////abs.db") {
            DatabaseUrl::Sqlite(p) => assert!(p.is_absolute()),
            other => panic!("{other:?}"),
        }
        match parse("sqlite:///rel.db") {
            DatabaseUrl::Sqlite(p) => assert_eq!(p, Path::new("rel.db")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn memory_spellings() {
        for s in [
            "memory",
            "memory://",
            "MEMORY",
            "sqlite://",
            "sqlite:///:memory:",
            "sqlite::memory:",
        ] {
            assert_eq!(parse(s), DatabaseUrl::Memory, "{s}");
        }
    }

    #[test]
    fn refuses_unsupported() {
        for s in [
            "mysql+pymysql://ironic:secret@db/ironic?charset=utf8",
            "mysql://ironic:secret@db/ironic",
            "oracle://x",
            "",
            "/var/lib/x.db",
            "memory://something",
            "sqlite://x.db",
            "postgresql:foo",
        ] {
            let err = DatabaseUrl::parse(s).expect_err(s);
            assert!(!err.contains("secret"), "{err}");
            assert!(err.contains("sqlite"), "{err}");
        }
        let err = DatabaseUrl::parse("mysql+pymysql://ironic:secret@db/ironic").unwrap_err();
        assert!(err.contains("postgresql://"), "{err}");
        assert!(err.contains("ironic:***@db"), "{err}");
    }

    #[test]
    fn display_masks_password() {
        let url = parse("postgresql+psycopg2://ironic:s3cr3t@db.example:5432/ironic");
        assert_eq!(
            url.to_string(),
            "postgresql://ironic:***@db.example:5432/ironic"
        );
        assert!(!format!("{url:?}").contains("s3cr3t"));
        let url = parse("postgresql://ironic@db/ironic?password=s3cr3t&sslmode=require");
        assert_eq!(
            url.to_string(),
            "postgresql://ironic@db/ironic?password=***&sslmode=require"
        );
        // A password containing '@' or ':' is masked whole.
        assert_eq!(
            mask_password("postgres://u:p@ss:w@host/db"),
            "postgres://u:***@host/db"
        );
        assert_eq!(parse("memory").to_string(), "memory");
        assert_eq!(parse("sqlite:///x.db").to_string(), "sqlite:///x.db");
        assert_eq!(parse("sqlite:////a/x.db").to_string(), "sqlite:////a/x.db");
        // Display round-trips.
        for s in [
            "sqlite:///x.db",
            "sqlite:////a/x.db",
            "memory",
            "postgres://u@h/db",
        ] {
            assert_eq!(parse(&parse(s).to_string()), parse(s));
        }
    }
}
