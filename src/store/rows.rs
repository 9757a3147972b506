//! Typed read-model tables: index columns beside each document, and the one
//! query shape every list is made of.
//!
//! A read model's documents are JSON; what the API filters, sorts and pages
//! on must not be dug out of that JSON at query time, or every list costs the
//! whole model. So each typed model has a table of its own (see
//! `schema/*/0006_read_tables.sql`) with one column per key and an index for
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
        let get = |c: &str| {
            keys.iter()
                .find(|(k, _)| *k == c)
                .map(|(_, v)| v)
                .unwrap_or(&Key::Null)
        };
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
    /// [`keyset_sql`]).
    pub fn is_after(&self, keys: &Keys) -> bool {
        let Some((value, ord)) = &self.after else {
            return true;
        };
        self.order(keys, value, *ord) == Ordering::Greater
    }

    /// Where a row with `keys` stands against `(value, ord)`, in this query's
    /// direction.
    pub fn order(&self, keys: &Keys, value: &Key, ord: i64) -> Ordering {
        let get = |c: &str| {
            keys.iter()
                .find(|(k, _)| *k == c)
                .map(|(_, v)| v.clone())
                .unwrap_or(Key::Null)
        };
        let own_ord = match get("ord") {
            Key::Int(o) => o,
            _ => 0,
        };
        let primary = match self.sort {
            Some(col) => get(col).cmp_sql(value),
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

/// The typed tables `schema/*/0006_read_tables.sql` create, with their
/// columns. Must match the SQL: `tests/store_suite.rs` writes and queries
/// every column on every backend.
pub const TABLES: &[Table] = &[
    Table {
        model: "nodes",
        table: "node_rows",
        columns: &[
            "ord",
            "name",
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

/// The table a model lives in: its typed table (scratch copies `<model>~…`
/// share their model's), or `None` for the generic `read_models`.
pub fn table_of(model: &str) -> Option<&'static Table> {
    let base = model.split('~').next().unwrap_or(model);
    TABLES.iter().find(|t| t.model == base)
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
}

/// The keys of a document written to `model`, checked against its table. A
/// model without a table takes no keys. (Projections always give `ord`; a
/// document written without it sorts first, as a NULL does.)
pub fn check_keys(model: &str, keys: &Keys) -> Result<(), StoreError> {
    match table_of(model) {
        None if keys.is_empty() => Ok(()),
        None => Err(StoreError::Database(format!(
            "read model {model} has no typed table, yet a document came with keys"
        ))),
        Some(t) => t.check(&keys.iter().map(|(c, _)| *c).collect::<Vec<_>>()),
    }
}

/// The typed table a page query reads, with its columns checked.
pub fn page_table(model: &str, q: &PageQuery<'_>) -> Result<&'static Table, StoreError> {
    let t = table_of(model).ok_or_else(|| {
        StoreError::Database(format!("read model {model} has no typed table to page"))
    })?;
    t.check(&q.columns())?;
    Ok(t)
}

/// A SQL fragment and the values it binds, in order, for one dialect.
/// `ph(n)` spells the n-th placeholder (1-based): `?` for SQLite, `$n` for
/// PostgreSQL.
pub struct Sql {
    pub text: String,
    pub binds: Vec<Key>,
}

impl Sql {
    fn new() -> Self {
        Sql {
            text: String::new(),
            binds: vec![],
        }
    }

    fn bind(&mut self, k: Key, ph: &dyn Fn(usize) -> String, offset: usize) -> String {
        self.binds.push(k);
        ph(offset + self.binds.len())
    }
}

/// The `WHERE` conditions (without the `model = …` one) and `ORDER BY` of a
/// page query, for the SQL backends; the placeholders number from
/// `offset + 1`. Text containment is `instr` in SQLite and `strpos` in
/// PostgreSQL (`contains` names the function).
pub fn page_sql(
    q: &PageQuery<'_>,
    ph: &dyn Fn(usize) -> String,
    offset: usize,
    contains: &str,
) -> Sql {
    let mut sql = Sql::new();
    let mut parts: Vec<String> = vec![];
    for c in q.conds {
        let p = cond_sql(c, &mut sql, ph, offset, contains);
        parts.push(p);
    }
    if let Some((value, ord)) = &q.after {
        let p = keyset_sql(q, value.clone(), *ord, &mut sql, ph, offset);
        parts.push(p);
    }
    let dir = if q.desc { "DESC" } else { "ASC" };
    let nulls = if q.desc { "NULLS LAST" } else { "NULLS FIRST" };
    let order = match q.sort {
        Some(col) => format!("{col} {dir} {nulls}, ord {dir}"),
        None => format!("ord {dir}"),
    };
    sql.text = format!(
        "{}ORDER BY {order}",
        parts
            .iter()
            .map(|p| format!("AND {p} "))
            .collect::<String>()
    );
    sql
}

fn cond_sql(
    c: &Cond,
    sql: &mut Sql,
    ph: &dyn Fn(usize) -> String,
    offset: usize,
    contains: &str,
) -> String {
    match c {
        Cond::Eq(_, Key::Null) => "1 = 0".into(),
        Cond::Eq(col, v) => {
            let p = sql.bind(v.clone(), ph, offset);
            format!("{col} = {p}")
        }
        Cond::IsNull(col) => format!("{col} IS NULL"),
        Cond::NotNull(col) => format!("{col} IS NOT NULL"),
        Cond::Contains(col, part) => {
            let p = sql.bind(Key::Text(part.clone()), ph, offset);
            format!("{contains}({col}, {p}) > 0")
        }
        Cond::Any(all) if all.is_empty() => "1 = 0".into(),
        Cond::Any(all) => {
            let ps: Vec<String> = all
                .iter()
                .map(|c| cond_sql(c, sql, ph, offset, contains))
                .collect();
            format!("({})", ps.join(" OR "))
        }
    }
}

/// The keyset condition: rows strictly after `(value, ord)` in the query's
/// order, with NULLs first ascending (last descending), spelled without row
/// comparisons so that a NULL sort value compares correctly.
fn keyset_sql(
    q: &PageQuery<'_>,
    value: Key,
    ord: i64,
    sql: &mut Sql,
    ph: &dyn Fn(usize) -> String,
    offset: usize,
) -> String {
    let (gt, ord_cmp) = if q.desc { ("<", "<") } else { (">", ">") };
    let o = sql.bind(Key::Int(ord), ph, offset);
    let Some(col) = q.sort else {
        return format!("ord {ord_cmp} {o}");
    };
    match (value, q.desc) {
        // Ascending, marker NULL: the other NULLs after it, then every value.
        (Key::Null, false) => format!("(({col} IS NULL AND ord > {o}) OR {col} IS NOT NULL)"),
        // Descending, marker NULL: NULLs come last, so only NULLs after it.
        (Key::Null, true) => format!("({col} IS NULL AND ord < {o})"),
        (v, desc) => {
            let a = sql.bind(v.clone(), ph, offset);
            let b = sql.bind(v, ph, offset);
            let tail = if desc {
                format!(" OR {col} IS NULL")
            } else {
                String::new()
            };
            format!("({col} {gt} {a} OR ({col} = {b} AND ord {ord_cmp} {o}){tail})")
        }
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
        let sql = page_sql(&q, &|n| format!("${n}"), 1, "strpos");
        assert_eq!(
            sql.text,
            "AND provision_state = $2 AND (owner = $3 OR lessee = $4) \
             AND (name > $6 OR (name = $7 AND ord > $5)) ORDER BY name ASC NULLS FIRST, ord ASC"
        );
        assert_eq!(sql.binds.len(), 6);
    }
}
