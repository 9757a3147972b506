//! Query strings and collection queries as Ironic answers them: the query
//! parameters ([`Params`], Ironic's `args` conversions), `limit`/`marker`
//! pagination with a `next` link whenever a page is full, `sort_key`/`sort_dir`,
//! `fields`, `detail`, and 400s with Ironic's wording for every malformed
//! parameter. Every endpoint reads its query through this module.

use super::error::{ApiError, ApiResult};
use super::links::BaseUrl;
use super::pyfmt;
use crate::projections::children;
use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use serde_json::{Map, Value};
use std::cmp::Ordering;
use uuid::Uuid;

/// The query string as ordered pairs. A repeated parameter's last value wins,
/// except `fields`, whose values are joined (Ironic merges them).
pub struct Params(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(pairs) = Query::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::malformed_uri())?;
        let mut out: Vec<(String, String)> = Vec::with_capacity(pairs.len());
        for (k, v) in pairs {
            match out.iter_mut().find(|(name, _)| *name == k) {
                Some((_, prev)) if k == "fields" => {
                    prev.push(',');
                    prev.push_str(&v);
                }
                _ => out.push((k, v)),
            }
        }
        Ok(Params(out))
    }
}

impl Params {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// A boolean parameter (`args.boolean`): absent, or one of oslo's words.
    pub fn boolean(&self, name: &str) -> ApiResult<Option<bool>> {
        self.get(name).map(|raw| parse_bool(name, raw)).transpose()
    }

    /// Ironic's `Unexpected arguments: …` for parameters a handler does not take.
    pub fn only(&self, allowed: &[&str]) -> ApiResult<()> {
        unexpected(self.0.iter().map(|(k, _)| k.as_str()), allowed)
    }
}

/// `Unexpected arguments: a, b` for names outside `allowed` (sorted, each once),
/// as Ironic refuses keyword arguments a handler does not take.
pub fn unexpected<'a>(keys: impl IntoIterator<Item = &'a str>, allowed: &[&str]) -> ApiResult<()> {
    let mut extra: Vec<&str> = keys.into_iter().filter(|k| !allowed.contains(k)).collect();
    extra.sort_unstable();
    extra.dedup();
    if extra.is_empty() {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "Unexpected arguments: {}",
            extra.join(", ")
        )))
    }
}

/// Ironic's `args.uuid` on a query parameter.
pub fn uuid_arg(name: &str, raw: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(raw)
        .map_err(|_| ApiError::bad_request(format!("Expected UUID for {name}: {raw}")))
}

/// Ironic's `args.integer` on a query parameter (Python's `int()` of the text).
pub fn integer_arg(name: &str, raw: &str) -> ApiResult<i64> {
    pyfmt::python_int(&Value::String(raw.to_string()))
        .ok_or_else(|| ApiError::bad_request(format!("Expected an integer for {name}: {raw}")))
}

/// Ironic's `validate_limit`: positive, at most `[api] max_limit` (the default).
pub fn limit(requested: Option<i64>, max_limit: u32) -> ApiResult<usize> {
    match requested {
        None => Ok(max_limit as usize),
        Some(n) if n <= 0 => Err(ApiError::bad_request("Limit must be positive")),
        Some(n) => Ok((n as usize).min(max_limit as usize)),
    }
}

/// Ironic's `validate_sort_dir` (the controllers that check `sort_dir`
/// themselves; the volume API's schema words it differently, see
/// [`ListSpec::parse`]).
pub fn sort_dir(raw: Option<&str>) -> ApiResult<Dir> {
    match raw {
        None | Some("asc") => Ok(Dir::Asc),
        Some("desc") => Ok(Dir::Desc),
        Some(other) => Err(ApiError::bad_request(format!(
            "Invalid sort direction: {other}. Acceptable values are 'asc' or 'desc'"
        ))),
    }
}

/// The internal key items carry for the default sort (`id` in Ironic: creation order).
pub const ORDER_KEY: &str = "__order";

/// What a collection allows.
pub struct ListSpec {
    /// Name of the collection key in the response (`connectors`, `nodes`, …).
    pub collection: &'static str,
    /// Path of the collection under `/v1` (`volume/connectors`).
    pub path: &'static str,
    /// Every field an item can show (for `fields=`).
    pub fields: &'static [&'static str],
    /// The fields shown without `fields` or `detail`.
    pub default_fields: &'static [&'static str],
    /// Fields that may not be sort keys (besides unknown ones).
    pub unsortable: &'static [&'static str],
    /// Query parameters this endpoint takes besides the common ones.
    pub filters: &'static [&'static str],
    /// The not-found text for an unknown marker (`{}` = the uuid).
    pub not_found: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    Asc,
    Desc,
}

#[derive(Debug, Clone)]
pub struct ListParams {
    pub limit: usize,
    pub marker: Option<Uuid>,
    pub sort_key: String,
    pub sort_dir: Dir,
    /// The fields to show (explicit or default); `None` = all (`detail`).
    pub fields: Option<Vec<String>>,
    /// Whether `fields` came from the client.
    pub explicit_fields: bool,
    pub detail: bool,
}

/// Ironic's `args.boolean` on a text value (a query parameter, a bool-string
/// field): oslo's strict `bool_from_string`.
pub fn parse_bool(name: &str, raw: &str) -> Result<bool, ApiError> {
    match pyfmt::strict_bool(name, &Value::String(raw.to_string())) {
        Ok(b) => Ok(b.unwrap_or_default()),
        Err(m) => Err(ApiError::bad_request(m)),
    }
}

fn python_list(items: &[&str]) -> String {
    let inner: Vec<String> = items.iter().map(|i| format!("'{i}'")).collect();
    format!("[{}]", inner.join(", "))
}

/// Checks a `fields` list against the allowed fields.
pub fn parse_fields(raw: &str, allowed: &[&str]) -> Result<Vec<String>, ApiError> {
    let mut sorted: Vec<&str> = allowed.to_vec();
    sorted.sort_unstable();
    raw.split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(|f| {
            if allowed.contains(&f) {
                Ok(f.to_string())
            } else {
                Err(ApiError::bad_request(format!(
                    "Schema error: '{f}' is not one of {}",
                    python_list(&sorted)
                )))
            }
        })
        .collect()
}

impl ListSpec {
    /// Parses and checks the query parameters.
    pub fn parse(&self, q: &Params, max_limit: u32) -> Result<ListParams, ApiError> {
        let common = [
            "limit", "marker", "sort_key", "sort_dir", "fields", "detail",
        ];
        let allowed: Vec<&str> = common.iter().chain(self.filters).copied().collect();
        q.only(&allowed)?;
        let requested = q
            .get("limit")
            .map(|l| integer_arg("limit", l))
            .transpose()?;
        let limit = limit(requested, max_limit)?;
        let marker = q.get("marker").map(|m| uuid_arg("marker", m)).transpose()?;
        // The volume API's schema checks `sort_dir`, in jsonschema's words.
        let sort_dir = match q.get("sort_dir") {
            None | Some("asc") => Dir::Asc,
            Some("desc") => Dir::Desc,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "Schema error: '{other}' is not one of ['asc', 'desc']"
                )))
            }
        };
        let sort_key = q.get("sort_key").unwrap_or("id").to_string();
        if self.unsortable.contains(&sort_key.as_str()) {
            return Err(ApiError::bad_request(format!(
                "The sort_key value {sort_key} is an invalid field for sorting"
            )));
        }
        if sort_key != "id" && !self.fields.contains(&sort_key.as_str()) {
            return Err(ApiError::bad_request(format!(
                "The sort_key value \"{sort_key}\" is an invalid field for sorting"
            )));
        }
        let detail = match q.get("detail") {
            None => false,
            Some(raw) => parse_bool("detail", raw)?,
        };
        let explicit = q
            .get("fields")
            .map(|raw| parse_fields(raw, self.fields))
            .transpose()?;
        if detail && explicit.is_some() {
            return Err(ApiError::bad_request(
                "Can't fetch a subset of fields with 'detail' set",
            ));
        }
        let explicit_fields = explicit.is_some();
        let fields = match (explicit, detail) {
            (Some(f), _) => Some(f),
            (None, true) => None,
            (None, false) => Some(self.default_fields.iter().map(|s| s.to_string()).collect()),
        };
        Ok(ListParams {
            limit,
            marker,
            sort_key,
            sort_dir,
            fields,
            explicit_fields,
            detail,
        })
    }

    /// Sorts, pages and trims `items` (full representations carrying `uuid`,
    /// `links` and [`ORDER_KEY`]), and builds the collection answer: for sort
    /// keys without an index column, where every candidate is in hand (the
    /// others come cut by the database: [`ListSpec::answer`]).
    pub fn page(
        &self,
        mut items: Vec<Value>,
        p: &ListParams,
        base: &BaseUrl,
    ) -> Result<Value, ApiError> {
        let key = p.sort_key.as_str();
        items.sort_by(|a, b| {
            let primary = if key == "id" {
                Ordering::Equal
            } else {
                compare(&a[key], &b[key])
            };
            let ord = primary.then_with(|| compare(&a[ORDER_KEY], &b[ORDER_KEY]));
            match p.sort_dir {
                Dir::Asc => ord,
                Dir::Desc => ord.reverse(),
            }
        });
        let start = match p.marker {
            None => 0,
            Some(m) => {
                let m = m.to_string();
                items
                    .iter()
                    .position(|i| i["uuid"].as_str() == Some(m.as_str()))
                    .map(|i| i + 1)
                    .ok_or_else(|| ApiError::not_found(self.not_found.replace("{}", &m)))?
            }
        };
        let page: Vec<Value> = items.into_iter().skip(start).take(p.limit).collect();
        Ok(self.answer(page, p, base))
    }

    /// The collection answer for one page already sorted and cut (at most
    /// `limit` full representations, in order): the requested fields, and a
    /// `next` link when the page is full.
    pub fn answer(&self, page: Vec<Value>, p: &ListParams, base: &BaseUrl) -> Value {
        let next = (page.len() == p.limit).then(|| {
            let last = page
                .last()
                .and_then(|i| i["uuid"].as_str())
                .unwrap_or_default()
                .to_string();
            let mut url = format!(
                "{}?sort_key={}&sort_dir={}",
                base.v1(self.path),
                p.sort_key,
                if p.sort_dir == Dir::Asc {
                    "asc"
                } else {
                    "desc"
                }
            );
            if p.detail {
                url.push_str("&detail=True");
            }
            // Ironic adds `fields` only when the list is not empty (`if fields:`).
            if let Some(f) = p.fields.as_ref().filter(|f| !f.is_empty()) {
                url.push_str(&format!("&fields={}", f.join(",")));
            }
            url.push_str(&format!("&limit={}&marker={last}", p.limit));
            url
        });
        let shown: Vec<Value> = page
            .into_iter()
            .map(|i| select(i, p.fields.as_deref()))
            .collect();
        let mut out = Map::new();
        out.insert(self.collection.to_string(), Value::Array(shown));
        if let Some(n) = next {
            out.insert("next".into(), Value::String(n));
        }
        Value::Object(out)
    }
}

/// Keeps the requested fields (and `links`, always) of a representation, and
/// drops internal keys.
pub fn select(item: Value, fields: Option<&[String]>) -> Value {
    let Value::Object(mut m) = item else {
        return item;
    };
    m.remove(ORDER_KEY);
    match fields {
        None => Value::Object(m),
        Some(fields) => {
            let mut out = Map::new();
            for f in fields {
                if let Some(v) = m.remove(f) {
                    out.insert(f.clone(), v);
                }
            }
            if let Some(l) = m.remove("links") {
                out.insert("links".into(), l);
            }
            Value::Object(out)
        }
    }
}

/// Orders JSON values: nulls first, then numbers, strings, booleans, others
/// (SQL's order for a column of one type, with NULLs first).
pub fn compare(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Null => 0,
            Value::Number(_) => 1,
            Value::String(_) => 2,
            Value::Bool(_) => 3,
            _ => 4,
        }
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .unwrap_or(0.0)
            .partial_cmp(&y.as_f64().unwrap_or(0.0))
            .unwrap_or(Ordering::Equal),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ => rank(a).cmp(&rank(b)),
    }
}

/// A full representation with the [`ORDER_KEY`] of the record it shows, for
/// [`ListSpec::page`]'s in-process sort.
pub fn with_order(mut shown: Value, doc: &Value) -> Value {
    shown[ORDER_KEY] = doc["created_position"].clone();
    shown
}

/// One page of a child collection (ports, connectors, targets): cut by the
/// model's indexes when the sort key has a column, else sorted here over the
/// records passing the filter. `render` makes a record's full representation.
pub async fn child_page(
    store: &dyn crate::store::LogStore,
    model: &str,
    spec: &ListSpec,
    filter: &children::ChildFilter,
    p: &ListParams,
    base: &BaseUrl,
    render: &(dyn Fn(&Value) -> Value + Sync),
) -> ApiResult<Value> {
    let marker = match p.marker {
        None => None,
        Some(m) => Some(
            children::get(store, model, &m.to_string())
                .await?
                .ok_or_else(|| ApiError::not_found(spec.not_found.replace("{}", &m.to_string())))?,
        ),
    };
    let desc = p.sort_dir == Dir::Desc;
    if let Some(column) = children::sort_column(model, &p.sort_key) {
        let limit = u32::try_from(p.limit).unwrap_or(u32::MAX);
        let docs =
            children::page(store, model, filter, column, desc, marker.as_ref(), limit).await?;
        return Ok(spec.answer(docs.iter().map(render).collect(), p, base));
    }
    // No column for this key: every record passing the filter, sorted here.
    let items = children::every(store, model, filter)
        .await?
        .iter()
        .map(|doc| with_order(render(doc), doc))
        .collect();
    spec.page(items, p, base)
}
