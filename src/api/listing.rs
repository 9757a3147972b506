//! Collection queries as Ironic answers them: `limit`/`marker` pagination with a
//! `next` link whenever a page is full, `sort_key`/`sort_dir`, `fields`,
//! `detail`, and 400s with Ironic's wording for every malformed parameter.

use super::error::ApiError;
use super::links::BaseUrl;
use crate::domain::capabilities::bool_from_string;
use serde_json::{Map, Value};
use std::cmp::Ordering;
use std::collections::HashMap;
use uuid::Uuid;

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

/// Parses a boolean query value the way Ironic does (strict).
pub fn parse_bool(name: &str, raw: &str) -> Result<bool, ApiError> {
    const OK: [&str; 12] = [
        "0", "1", "f", "false", "n", "no", "off", "on", "t", "true", "y", "yes",
    ];
    let l = raw.to_ascii_lowercase();
    if OK.contains(&l.as_str()) {
        Ok(bool_from_string(&l))
    } else {
        Err(ApiError::bad_request(format!(
            "Invalid {name}: Unrecognized value '{raw}', acceptable values are: '0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'"
        )))
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
    pub fn parse(
        &self,
        q: &HashMap<String, String>,
        max_limit: u32,
    ) -> Result<ListParams, ApiError> {
        let common = [
            "limit", "marker", "sort_key", "sort_dir", "fields", "detail",
        ];
        let mut unexpected: Vec<&str> = q
            .keys()
            .map(String::as_str)
            .filter(|k| !common.contains(k) && !self.filters.contains(k))
            .collect();
        if !unexpected.is_empty() {
            unexpected.sort_unstable();
            return Err(ApiError::bad_request(format!(
                "Unexpected arguments: {}",
                unexpected.join(", ")
            )));
        }
        let limit = match q.get("limit") {
            None => max_limit as usize,
            Some(raw) => match raw.parse::<i64>() {
                Err(_) => {
                    return Err(ApiError::bad_request(format!(
                        "Expected an integer for limit: {raw}"
                    )))
                }
                Ok(n) if n <= 0 => return Err(ApiError::bad_request("Limit must be positive")),
                Ok(n) => (n as usize).min(max_limit as usize),
            },
        };
        let marker =
            match q.get("marker") {
                None => None,
                Some(raw) => Some(Uuid::parse_str(raw).map_err(|_| {
                    ApiError::bad_request(format!("Expected UUID for marker: {raw}"))
                })?),
            };
        let sort_dir = match q.get("sort_dir").map(String::as_str) {
            None | Some("asc") => Dir::Asc,
            Some("desc") => Dir::Desc,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "Schema error: '{other}' is not one of ['asc', 'desc']"
                )))
            }
        };
        let sort_key = q
            .get("sort_key")
            .cloned()
            .unwrap_or_else(|| "id".to_string());
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
    /// `links` and [`ORDER_KEY`]), and builds the collection answer.
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
        Ok(Value::Object(out))
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
