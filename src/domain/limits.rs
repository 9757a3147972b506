//! Limits on the JSON values a resource may hold.
//!
//! serde_json refuses to parse anything nested more than 128 levels deep, and
//! a stored event wraps a resource's value in a few levels of its own (the
//! event's tag, `before`/`after`, the store's envelope). A value accepted near
//! the parser's limit would be committed and then never read back, stopping
//! every reader of the log. So both a request body and the document a patch
//! produces are held to [`MAX_JSON_DEPTH`], far inside the parser's limit.
//!
//! PostgreSQL cannot store the character U+0000 in text or `jsonb` at all, and
//! SQLite would store it: so that both stores answer the same, no string of a
//! request (key or value) may hold it ([`has_nul`]).

use serde_json::{Map, Value};

/// The deepest nesting accepted, counting the body (or document) itself as
/// the first level: `{"extra": {"x": []}}` is 3 levels deep.
pub const MAX_JSON_DEPTH: usize = 32;

/// The nesting depth of `v`: a scalar is 0, `[]` and `{}` are 1.
pub fn depth(v: &Value) -> usize {
    // Iterative: the value may be as deep as the parser allows.
    let mut deepest = 0;
    let mut stack = vec![(v, 0usize)];
    while let Some((v, d)) = stack.pop() {
        match v {
            Value::Array(items) => {
                deepest = deepest.max(d + 1);
                stack.extend(items.iter().map(|i| (i, d + 1)));
            }
            Value::Object(m) => {
                deepest = deepest.max(d + 1);
                stack.extend(m.values().map(|i| (i, d + 1)));
            }
            _ => {}
        }
    }
    deepest
}

/// The refusal of a value deeper than [`MAX_JSON_DEPTH`], or `None`.
pub fn too_deep(what: &str, v: &Value) -> Option<String> {
    refusal(what, depth(v))
}

/// [`too_deep`] for an object given as its map.
pub fn too_deep_object(what: &str, m: &Map<String, Value>) -> Option<String> {
    refusal(what, 1 + m.values().map(depth).max().unwrap_or(0))
}

fn refusal(what: &str, depth: usize) -> Option<String> {
    (depth > MAX_JSON_DEPTH).then(|| {
        format!(
            "{what} is nested more than {MAX_JSON_DEPTH} levels deep (objects and arrays, counting the outermost); flatten it."
        )
    })
}

/// Whether any string in `v`, object keys included, holds U+0000.
pub fn has_nul(v: &Value) -> bool {
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            Value::String(s) if s.contains('\0') => return true,
            Value::Array(items) => stack.extend(items),
            Value::Object(m) => {
                if m.keys().any(|k| k.contains('\0')) {
                    return true;
                }
                stack.extend(m.values());
            }
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn depth_counts_the_outermost_level() {
        assert_eq!(depth(&json!(1)), 0);
        assert_eq!(depth(&json!([])), 1);
        assert_eq!(depth(&json!({"extra": {"x": []}})), 3);
        assert_eq!(depth(&json!([1, {"a": [[2]]}, []])), 4);
    }

    #[test]
    fn the_limit_is_inclusive() {
        let mut v = json!(null);
        for _ in 0..MAX_JSON_DEPTH {
            v = json!([v]);
        }
        assert_eq!(too_deep("x", &v), None);
        assert!(too_deep("x", &json!([v])).is_some());
    }

    #[test]
    fn nul_is_found_in_keys_and_values() {
        assert!(has_nul(&json!({"a": ["b\u{0}"]})));
        assert!(has_nul(&json!({"a\u{0}": 1})));
        assert!(!has_nul(&json!({"a": ["b", 0, null]})));
    }
}
