//! Typed read-model tables: index columns beside each document, and the one
//! query shape every list is made of.
//!
//! A read model's documents are JSON; what the API filters, sorts and pages
//! on must not be dug out of that JSON at query time, or every list costs the
//! whole model. So each typed model has a table of its own (see
//! `schema/sqlite/0005_read_tables.sql` and
//! `schema/postgres/0006_read_tables.sql`) with one column per key and an index for
//! every query the API makes, and each document is written with its **keys**
//! ([`DocChange::Put`](super::DocChange)'s `keys`): the values of those
//! columns, computed by the projection that owns the model. A query
//! ([`PageQuery`]) is then a conjunction of conditions on columns, a sort
//! column, and a keyset cursor — `(sort value, ord)` of the last row seen —
//! so a page costs the rows it returns, whatever the model holds.
//!
//! The store still knows nothing of the domain: it knows which tables its
//! schema has and which columns they hold ([`TABLES`]), and refuses keys and
//! conditions on any other column. Every typed table has `ord`, a per-model
//! unique integer (the creation position: Ironic's default order, its `id`),
//! which breaks ties and makes the keyset cursor exact.
//!
//! Models without a typed table (the process manager's own state, test
//! models) live in the generic `read_models` table and have no keys.

use super::StoreError;
use std::cmp::Ordering;

/// The value of one index column. Booleans are `Int` 0/1 in every backend,
/// so that one SQL spelling serves both dialects.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    Null,
    Int(i64),
    Text(String),
}

impl Key {
    pub fn text(s: impl Into<String>) -> Key {
        Key::Text(s.into())
    }

    /// `Null` for `None`.
    pub fn opt_text(s: Option<impl Into<String>>) -> Key {
        s.map_or(Key::Null, |s| Key::Text(s.into()))
    }

    pub fn bool(b: bool) -> Key {
        Key::Int(i64::from(b))
    }

    /// SQL's order within one column, NULLs first (the order every backend
    /// sorts in, ascending).
    pub fn cmp_sql(&self, other: &Key) -> Ordering {
        match (self, other) {
            (Key::Null, Key::Null) => Ordering::Equal,
            (Key::Null, _) => Ordering::Less,
            (_, Key::Null) => Ordering::Greater,
            (Key::Int(a), Key::Int(b)) => a.cmp(b),
            (Key::Text(a), Key::Text(b)) => a.as_bytes().cmp(b.as_bytes()),
            // One column holds one type; mixed values only in a broken row.
            (Key::Int(_), Key::Text(_)) => Ordering::Less,
            (Key::Text(_), Key::Int(_)) => Ordering::Greater,
        }
    }
}

/// The index columns of one document: `(column, value)`; a column left out is
/// NULL.
pub type Keys = Vec<(&'static str, Key)>;

/// The value of `column` among a row's keys (NULL when it has none).
pub fn key_of<'k>(keys: &'k Keys, column: &str) -> &'k Key {
    keys.iter()
        .find(|(k, _)| *k == column)
        .map_or(&Key::Null, |(_, v)| v)
}

/// A row's place in the order of `sort` (a column, or `None`: `ord` alone):
/// its sort value and its `ord` (0 without one), what a keyset cursor
/// ([`PageQuery::after`]) holds.
pub fn cursor_of(keys: &Keys, sort: Option<&str>) -> (Key, i64) {
    let value = sort.map_or(Key::Null, |c| key_of(keys, c).clone());
    let ord = match key_of(keys, "ord") {
        Key::Int(o) => *o,
        _ => 0,
    };
    (value, ord)
}

/// One condition on an index column.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    /// `column = value` (`Key::Null` never matches: use [`Cond::IsNull`]).
    Eq(&'static str, Key),
    IsNull(&'static str),
    NotNull(&'static str),
    /// The column's text contains this text (case-sensitive, like Ironic's
    /// `description_contains` on its own database).
    Contains(&'static str, String),
    /// At least one of these holds.
    Any(Vec<Cond>),
}

impl Cond {
    /// Every column the condition names.
    pub fn columns(&self, out: &mut Vec<&'static str>) {
        match self {
            Cond::Eq(c, _) | Cond::IsNull(c) | Cond::NotNull(c) | Cond::Contains(c, _) => {
                out.push(c)
            }
            Cond::Any(all) => all.iter().for_each(|c| c.columns(out)),
        }
    }

    /// Whether a row with `keys` passes (the memory backend's evaluation, the
    /// same rules the SQL backends apply).
    pub fn holds(&self, keys: &Keys) -> bool {
        let get = |c: &str| key_of(keys, c);
        match self {
            Cond::Eq(c, want) => *want != Key::Null && get(c) == want,
            Cond::IsNull(c) => *get(c) == Key::Null,
            Cond::NotNull(c) => *get(c) != Key::Null,
            Cond::Contains(c, part) => matches!(get(c), Key::Text(t) if t.contains(part.as_str())),
            Cond::Any(all) => all.iter().any(|c| c.holds(keys)),
        }
    }
}

/// A page of a typed model: the rows passing every condition, ordered by
/// `sort` (NULLs first), then `ord`, both in one direction; the rows after
/// `after` in that order; at most `limit` of them.
#[derive(Debug, Clone, PartialEq)]
pub struct PageQuery<'a> {
    pub conds: &'a [Cond],
    /// The sort column; `None` sorts by `ord` alone.
    pub sort: Option<&'static str>,
    pub desc: bool,
    /// The last row of the previous page: its sort value (ignored without
    /// `sort`) and its `ord`.
    pub after: Option<(Key, i64)>,
    pub limit: u32,
}

impl PageQuery<'_> {
    /// Every column the query names, for checking against the table.
    pub fn columns(&self) -> Vec<&'static str> {
        let mut out = vec![];
        self.conds.iter().for_each(|c| c.columns(&mut out));
        out.extend(self.sort);
        out
    }

    /// Whether a row with these keys comes after the cursor, in this query's
    /// order (the memory backend's keyset; the SQL backends spell it out in
    /// [`page_select`]).
    pub fn is_after(&self, keys: &Keys) -> bool {
        let Some((value, ord)) = &self.after else {
            return true;
        };
        self.order(keys, value, *ord) == Ordering::Greater
    }

    /// Where a row with `keys` stands against `(value, ord)`, in this query's
    /// direction.
    pub fn order(&self, keys: &Keys, value: &Key, ord: i64) -> Ordering {
        let (own_value, own_ord) = cursor_of(keys, self.sort);
        let primary = match self.sort {
            Some(_) => own_value.cmp_sql(value),
            None => Ordering::Equal,
        };
        let o = primary.then(own_ord.cmp(&ord));
        if self.desc {
            o.reverse()
        } else {
            o
        }
    }
}

/// One typed table of the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Table {
    /// The model it holds (and its scratch copies: `<model>~…`).
    pub model: &'static str,
    /// The SQL table.
    pub table: &'static str,
    /// Its index columns (besides `model`, `id` and `body`), `ord` first.
    pub columns: &'static [&'static str],
}

/// The typed tables `schema/sqlite/0005_read_tables.sql` and
/// `schema/postgres/0006_read_tables.sql` create, with their columns. Must match the SQL: `tests/store/store_suite.rs` writes and queries
/// every column on every backend.
pub const TABLES: &[Table] = &[
    Table {
        model: "nodes",
        table: "node_rows",
        columns: &[
            "ord",
            "name",
            "uuid",
            "provision_state",
            "power_state",
            "driver",
            "maintenance",
            "instance_uuid",
            "resource_class",
            "conductor_group",
            "owner",
            "lessee",
            "retired",
            "fault",
            "description",
            "created_at",
            "updated_at",
            "provision_updated_at",
            "needs_work",
            "power_sync",
        ],
    },
    Table {
        model: "ports",
        table: "port_rows",
        columns: &["ord", "node_uuid", "address", "created_at", "updated_at"],
    },
    Table {
        model: "connectors",
        table: "connector_rows",
        columns: &[
            "ord",
            "node_uuid",
            "type",
            "connector_id",
            "created_at",
            "updated_at",
        ],
    },
    Table {
        model: "targets",
        table: "target_rows",
        columns: &[
            "ord",
            "node_uuid",
            "volume_type",
            "volume_id",
            "boot_index",
            "created_at",
            "updated_at",
        ],
    },
    Table {
        model: "node_history",
        table: "history_rows",
        columns: &["ord", "node_uuid"],
    },
];

/// The index columns that hold integers (`INTEGER` in SQLite, `bigint` in
/// PostgreSQL: `ord`, the booleans as 0/1, `boot_index`); every other index
/// column holds text. A column name has one type in every table, so that the
/// backends can bind a whole column (PostgreSQL's typed `unnest` arrays) even
/// when every value in a batch is NULL.
pub const INT_COLUMNS: &[&str] = &["ord", "maintenance", "retired", "needs_work", "boot_index"];

/// Whether an index column holds integers (see [`INT_COLUMNS`]).
pub fn is_int(column: &str) -> bool {
    INT_COLUMNS.contains(&column)
}

/// The table a model lives in: its typed table (scratch copies `<model>~…`
/// share their model's), or `None` for the generic `read_models`.
pub fn table_of(model: &str) -> Option<&'static Table> {
    let base = model.split('~').next().unwrap_or(model);
    TABLES.iter().find(|t| t.model == base)
}

/// The SQL table a model's documents live in: its typed table, or
/// `read_models`. A name from [`TABLES`], never from input.
pub fn sql_table(model: &str) -> &'static str {
    table_of(model).map_or("read_models", |t| t.table)
}

impl Table {
    /// Refuses a column the table does not have (a programming error, but a
    /// column name ends up in SQL text, so it is checked, never trusted).
    pub fn check(&self, columns: &[&str]) -> Result<(), StoreError> {
        match columns.iter().find(|c| !self.columns.contains(c)) {
            None => Ok(()),
            Some(c) => Err(StoreError::Database(format!(
                "read model {} has no column {c:?}",
                self.model
            ))),
        }
    }

    /// Refuses a value of the wrong type for its column (an integer in a
    /// text column or the other way round): memory would store it, SQLite's
    /// STRICT tables and PostgreSQL's typed parameters would not, so no
    /// backend takes it.
    fn check_value(&self, column: &str, value: &Key) -> Result<(), StoreError> {
        let fits = match value {
            Key::Null => true,
            Key::Int(_) => is_int(column),
            Key::Text(_) => !is_int(column),
        };
        if fits {
            return Ok(());
        }
        let holds = if is_int(column) { "integers" } else { "text" };
        Err(StoreError::Database(format!(
            "column {column:?} of read model {} holds {holds}",
            self.model
        )))
    }

    /// The value of each of [`columns`](Self::columns), in that order, for a
    /// document with `keys` (NULL for a column the keys leave out; the first
    /// value for a column given twice, as [`Cond::holds`] reads it).
    pub fn values<'k>(&self, keys: &'k Keys) -> Vec<&'k Key> {
        const NULL: &Key = &Key::Null;
        self.columns
            .iter()
            .map(|c| keys.iter().find(|(k, _)| k == c).map_or(NULL, |(_, v)| v))
            .collect()
    }
}

/// The keys of a document written to `model`, checked against its table:
/// every column must exist and every value have its column's type. A model
/// without a table takes no keys. (Projections always give `ord`; a document
/// written without it sorts first, as a NULL does.)
pub fn check_keys(model: &str, keys: &Keys) -> Result<(), StoreError> {
    match table_of(model) {
        None if keys.is_empty() => Ok(()),
        None => Err(StoreError::Database(format!(
            "read model {model} has no typed table, yet a document came with keys"
        ))),
        Some(t) => {
            t.check(&keys.iter().map(|(c, _)| *c).collect::<Vec<_>>())?;
            keys.iter().try_for_each(|(c, v)| t.check_value(c, v))
        }
    }
}

/// The typed table a page query reads, with its columns and the types of its
/// values checked.
pub fn page_table(model: &str, q: &PageQuery<'_>) -> Result<&'static Table, StoreError> {
    let t = table_of(model).ok_or_else(|| {
        StoreError::Database(format!("read model {model} has no typed table to page"))
    })?;
    t.check(&q.columns())?;
    fn values(t: &Table, c: &Cond) -> Result<(), StoreError> {
        match c {
            Cond::Eq(col, v) => t.check_value(col, v),
            Cond::Contains(col, part) => t.check_value(col, &Key::Text(part.clone())),
            Cond::IsNull(_) | Cond::NotNull(_) => Ok(()),
            Cond::Any(all) => all.iter().try_for_each(|c| values(t, c)),
        }
    }
    q.conds.iter().try_for_each(|c| values(t, c))?;
    if let (Some(col), Some((v, _))) = (q.sort, &q.after) {
        t.check_value(col, v)?;
    }
    Ok(t)
}

/// The statement that counts a typed model's rows by the values of a text
/// `column` ([`LogStore::count_by`](super::LogStore::count_by)), with the
/// model as its one parameter: a grouped scan of the column's index.
pub fn count_select(
    model: &str,
    column: &'static str,
    dialect: Dialect,
) -> Result<String, StoreError> {
    let t = table_of(model).ok_or_else(|| {
        StoreError::Database(format!("read model {model} has no typed table to count"))
    })?;
    t.check(&[column])?;
    if is_int(column) {
        return Err(StoreError::Database(format!(
            "read model {model}: column {column:?} is not text"
        )));
    }
    Ok(format!(
        "SELECT {column}, count(*) FROM {} WHERE model = {} GROUP BY {column}",
        t.table,
        dialect.placeholder(1)
    ))
}

/// The SQL dialect a statement is spelled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// The n-th placeholder (1-based).
    pub(crate) fn placeholder(self, n: usize) -> String {
        match self {
            Dialect::Sqlite => "?".into(),
            Dialect::Postgres => format!("${n}"),
        }
    }

    /// The text-position function: `instr` in SQLite, `strpos` in PostgreSQL
    /// (both 1-based, 0 when absent, NULL on NULL).
    fn contains(self) -> &'static str {
        match self {
            Dialect::Sqlite => "instr",
            Dialect::Postgres => "strpos",
        }
    }
}

/// A SQL statement and the values it binds, in placeholder order.
#[derive(Debug, Clone, PartialEq)]
pub struct Sql {
    pub text: String,
    pub binds: Vec<Key>,
}

impl Sql {
    fn bind(&mut self, k: Key, d: Dialect) -> String {
        self.binds.push(k);
        d.placeholder(self.binds.len())
    }
}

/// The statement reading one page of a typed model: `SELECT <select> FROM
/// <table> WHERE model = … AND <conditions> AND <keyset> ORDER BY … LIMIT …`,
/// where `select` names plain columns of the table (`id`, `body`, `ord`).
///
/// Every page is meant to be one range of an index `(model, <sort>, ord)` (or
/// `(model, ord)`): `ORDER BY <sort> ASC NULLS FIRST, ord ASC NULLS FIRST` is
/// the index's order, `DESC NULLS LAST` in both its reverse, and the keyset bounds the
/// range on the sort column itself, so a deep cursor seeks rather than walks
/// the rows before it. Two keysets are not one range, because NULLs sit at
/// one end of the index and `col < v` never matches them: descending after a
/// value (the values below it, **then** every NULL) and ascending after a
/// NULL (the later NULLs, **then** every value). Those pages are a `UNION ALL`
/// of the two ranges, each cut to the limit, then ordered by which range a
/// row came from: at most twice the limit rows are sorted, however deep the
/// cursor.
pub fn page_select(
    table: &Table,
    model: &str,
    select: &[&'static str],
    q: &PageQuery<'_>,
    d: Dialect,
) -> Sql {
    let mut sql = Sql {
        text: String::new(),
        binds: vec![],
    };
    // NULLs first ascending in every column, `ord` too (a row written
    // without one sorts first, as in the memory store): SQLite's default,
    // spelled out for PostgreSQL, whose default is the other way round.
    let dir = match q.desc {
        false => "ASC NULLS FIRST",
        true => "DESC NULLS LAST",
    };
    let order = match q.sort {
        // `ord, ord` would make SQLite sort the last term itself.
        Some(col) if col != "ord" => format!("{col} {dir}, ord {dir}"),
        _ => format!("ord {dir}"),
    };
    let ranges = keyset_ranges(q);
    let arm = |sql: &mut Sql, select: &str, range: Option<&Range>| {
        let model = sql.bind(Key::text(model), d);
        let mut text = format!("SELECT {select} FROM {} WHERE model = {model}", table.table);
        for c in q.conds {
            let c = cond_sql(c, sql, d);
            text.push_str(&format!(" AND {c}"));
        }
        if let Some(r) = range {
            let r = range_sql(r, q.desc, sql, d);
            text.push_str(&format!(" AND {r}"));
        }
        let limit = sql.bind(Key::Int(i64::from(q.limit)), d);
        text.push_str(&format!(" ORDER BY {order} LIMIT {limit}"));
        text
    };
    match ranges.as_slice() {
        [] => sql.text = arm(&mut sql, &select.join(", "), None),
        [one] => sql.text = arm(&mut sql, &select.join(", "), Some(one)),
        many => {
            // Each range carries what the outer ORDER BY needs.
            let mut inner: Vec<&str> = select.to_vec();
            for c in ["ord"].into_iter().chain(q.sort) {
                if !inner.contains(&c) {
                    inner.push(c);
                }
            }
            let inner = inner.join(", ");
            let arms: Vec<String> = many
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let a = arm(&mut sql, &format!("{inner}, {i} AS arm"), Some(r));
                    format!("SELECT * FROM ({a}) AS range{i}")
                })
                .collect();
            let limit = sql.bind(Key::Int(i64::from(q.limit)), d);
            sql.text = format!(
                "SELECT {} FROM ({}) AS page ORDER BY arm, {order} LIMIT {limit}",
                select.join(", "),
                arms.join(" UNION ALL ")
            );
        }
    }
    sql
}

fn cond_sql(c: &Cond, sql: &mut Sql, d: Dialect) -> String {
    match c {
        Cond::Eq(_, Key::Null) => "1 = 0".into(),
        Cond::Eq(col, v) => {
            let p = sql.bind(v.clone(), d);
            format!("{col} = {p}")
        }
        Cond::IsNull(col) => format!("{col} IS NULL"),
        Cond::NotNull(col) => format!("{col} IS NOT NULL"),
        Cond::Contains(col, part) => {
            let p = sql.bind(Key::Text(part.clone()), d);
            format!("{}({col}, {p}) > 0", d.contains())
        }
        Cond::Any(all) if all.is_empty() => "1 = 0".into(),
        Cond::Any(all) => {
            let ps: Vec<String> = all.iter().map(|c| cond_sql(c, sql, d)).collect();
            format!("({})", ps.join(" OR "))
        }
    }
}

/// One index range of a keyset page (see [`page_select`]).
#[derive(Debug, Clone, PartialEq)]
enum Range {
    /// `ord` beyond the cursor's (`>` ascending, `<` descending), among the
    /// NULLs of `col` if given.
    Ord { col: Option<&'static str>, ord: i64 },
    /// `col` at the cursor's value or beyond, and past the cursor's `ord`
    /// among the rows at its value: `col >= v AND (col > v OR ord > o)`
    /// ascending (`<=`, `<` descending); NULLs never match.
    From {
        col: &'static str,
        value: Key,
        ord: i64,
    },
    /// Every row with a value in `col` (`col IS NOT NULL`).
    Values(&'static str),
    /// Every NULL in `col` (`col IS NULL`).
    Nulls(&'static str),
}

/// The index ranges a keyset page reads, in the query's order (none: the
/// whole index).
fn keyset_ranges(q: &PageQuery<'_>) -> Vec<Range> {
    let Some((value, ord)) = q.after.clone() else {
        return vec![];
    };
    let Some(col) = q.sort else {
        return vec![Range::Ord { col: None, ord }];
    };
    match (value, q.desc) {
        // The later NULLs, then every value.
        (Key::Null, false) => vec![
            Range::Ord {
                col: Some(col),
                ord,
            },
            Range::Values(col),
        ],
        // NULLs come last: only the later NULLs.
        (Key::Null, true) => vec![Range::Ord {
            col: Some(col),
            ord,
        }],
        (value, false) => vec![Range::From { col, value, ord }],
        // The values below, then every NULL.
        (value, true) => vec![Range::From { col, value, ord }, Range::Nulls(col)],
    }
}

fn range_sql(r: &Range, desc: bool, sql: &mut Sql, d: Dialect) -> String {
    match r {
        Range::Ord { col, ord } => {
            let cmp = if desc { "<" } else { ">" };
            let o = sql.bind(Key::Int(*ord), d);
            match col {
                None => format!("ord {cmp} {o}"),
                Some(col) => format!("{col} IS NULL AND ord {cmp} {o}"),
            }
        }
        Range::From { col, value, ord } => {
            let (to, cmp) = if desc { ("<=", "<") } else { (">=", ">") };
            let a = sql.bind(value.clone(), d);
            let b = sql.bind(value.clone(), d);
            let o = sql.bind(Key::Int(*ord), d);
            format!("{col} {to} {a} AND ({col} {cmp} {b} OR ord {cmp} {o})")
        }
        Range::Values(col) => format!("{col} IS NOT NULL"),
        Range::Nulls(col) => format!("{col} IS NULL"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(ord: i64, name: Option<&str>) -> Keys {
        vec![("ord", Key::Int(ord)), ("name", Key::opt_text(name))]
    }

    #[test]
    fn the_keyset_orders_nulls_first_ascending_and_last_descending() {
        let asc = PageQuery {
            conds: &[],
            sort: Some("name"),
            desc: false,
            after: Some((Key::Null, 5)),
            limit: 10,
        };
        assert!(asc.is_after(&keys(6, None)));
        assert!(!asc.is_after(&keys(4, None)));
        assert!(asc.is_after(&keys(1, Some("a"))));
        let desc = PageQuery {
            desc: true,
            after: Some((Key::text("m"), 5)),
            ..asc.clone()
        };
        assert!(desc.is_after(&keys(9, Some("a"))));
        assert!(desc.is_after(&keys(4, Some("m"))));
        assert!(!desc.is_after(&keys(6, Some("m"))));
        assert!(desc.is_after(&keys(1, None)));
        assert!(!desc.is_after(&keys(1, Some("z"))));
    }

    #[test]
    fn unknown_columns_are_refused_before_they_reach_sql() {
        let q = PageQuery {
            conds: &[Cond::Eq("name; DROP TABLE events", Key::Int(1))],
            sort: None,
            desc: false,
            after: None,
            limit: 1,
        };
        assert!(page_table("nodes", &q).is_err());
        assert!(page_table("process_manager", &q).is_err());
        assert!(check_keys("nodes", &vec![("nope", Key::Null)]).is_err());
        assert!(check_keys("process_manager", &vec![("ord", Key::Int(1))]).is_err());
        assert!(check_keys("nodes~rebuild", &vec![("ord", Key::Int(1))]).is_ok());
    }

    #[test]
    fn the_sql_spells_the_same_conditions() {
        let conds = [
            Cond::Eq("provision_state", Key::text("active")),
            Cond::Any(vec![
                Cond::Eq("owner", Key::text("p")),
                Cond::Eq("lessee", Key::text("p")),
            ]),
        ];
        let q = PageQuery {
            conds: &conds,
            sort: Some("name"),
            desc: false,
            after: Some((Key::text("n1"), 7)),
            limit: 10,
        };
        let t = page_table("nodes", &q).unwrap();
        let sql = page_select(t, "nodes", &["id", "body"], &q, Dialect::Postgres);
        assert_eq!(
            sql.text,
            "SELECT id, body FROM node_rows WHERE model = $1 AND provision_state = $2 \
             AND (owner = $3 OR lessee = $4) AND name >= $5 AND (name > $6 OR ord > $7) \
             ORDER BY name ASC NULLS FIRST, ord ASC NULLS FIRST LIMIT $8"
        );
        assert_eq!(
            sql.binds,
            [
                Key::text("nodes"),
                Key::text("active"),
                Key::text("p"),
                Key::text("p"),
                Key::text("n1"),
                Key::text("n1"),
                Key::Int(7),
                Key::Int(10),
            ]
        );
    }

    #[test]
    fn a_keyset_past_the_nulls_is_two_ranges() {
        let q = PageQuery {
            conds: &[Cond::Contains("name", "x".into())],
            sort: Some("name"),
            desc: true,
            after: Some((Key::text("m"), 5)),
            limit: 3,
        };
        let t = page_table("nodes", &q).unwrap();
        let sql = page_select(t, "nodes", &["id", "ord"], &q, Dialect::Sqlite);
        assert_eq!(
            sql.text,
            "SELECT id, ord FROM (\
             SELECT * FROM (SELECT id, ord, name, 0 AS arm FROM node_rows WHERE model = ? \
             AND instr(name, ?) > 0 AND name <= ? AND (name < ? OR ord < ?) \
             ORDER BY name DESC NULLS LAST, ord DESC NULLS LAST LIMIT ?) AS range0 UNION ALL \
             SELECT * FROM (SELECT id, ord, name, 1 AS arm FROM node_rows WHERE model = ? \
             AND instr(name, ?) > 0 AND name IS NULL \
             ORDER BY name DESC NULLS LAST, ord DESC NULLS LAST LIMIT ?) AS range1\
             ) AS page ORDER BY arm, name DESC NULLS LAST, ord DESC NULLS LAST LIMIT ?"
        );
        assert_eq!(sql.binds.len(), 10);
        let asc = PageQuery {
            desc: false,
            after: Some((Key::Null, 5)),
            ..q.clone()
        };
        let sql = page_select(t, "nodes", &["id"], &asc, Dialect::Postgres);
        assert!(
            sql.text.contains("name IS NULL AND ord > $3"),
            "{}",
            sql.text
        );
        assert!(sql.text.contains("name IS NOT NULL"), "{}", sql.text);
        let none = PageQuery {
            sort: None,
            after: Some((Key::Null, 5)),
            ..q
        };
        let sql = page_select(t, "nodes", &["id"], &none, Dialect::Postgres);
        assert!(
            sql.text
                .contains("AND ord < $3 ORDER BY ord DESC NULLS LAST LIMIT $4"),
            "{}",
            sql.text
        );
    }

    #[test]
    fn values_of_the_wrong_type_are_refused() {
        assert!(check_keys("nodes", &vec![("ord", Key::text("1"))]).is_err());
        assert!(check_keys("nodes", &vec![("name", Key::Int(1))]).is_err());
        assert!(check_keys("targets", &vec![("boot_index", Key::Int(0))]).is_ok());
        let conds = [Cond::Contains("maintenance", "1".into())];
        let q = PageQuery {
            conds: &conds,
            sort: None,
            desc: false,
            after: None,
            limit: 1,
        };
        assert!(page_table("nodes", &q).is_err());
        let q = PageQuery {
            conds: &[],
            sort: Some("name"),
            after: Some((Key::Int(3), 1)),
            ..q
        };
        assert!(page_table("nodes", &q).is_err());
        let t = table_of("nodes").unwrap();
        let keys = vec![("name", Key::text("a")), ("name", Key::text("b"))];
        let values = t.values(&keys);
        assert_eq!(values.len(), t.columns.len());
        assert_eq!(values[1], &Key::text("a"));
        assert_eq!(values[0], &Key::Null);
    }
}
