//! Ironic's string conventions, inherited from Python and the oslo libraries:
//! which words are booleans, and what "given" means for a JSON value.
//!
//! Ironic reads booleans out of strings in three places with two word lists:
//! `oslo_utils.strutils.bool_from_string` for API values, `driver_info` and
//! capabilities (twelve words, [`BOOL_WORDS`]), and `oslo.config`'s `Boolean`
//! type for configuration files (eight). And it tests "was this given" with
//! Python's truthiness (`if value:`), under which `""`, `0`, `[]` and `{}`
//! are not given. Each of those rules lives here once; the API keeps only
//! the wording of its refusals (see `docs/ironic-behaviour.md` §4.4).

use serde_json::Value;

/// Every word `bool_from_string(strict=True)` accepts (any case, trimmed),
/// in the order Ironic's refusal lists them.
pub const BOOL_WORDS: [&str; 12] = [
    "0", "1", "f", "false", "n", "no", "off", "on", "t", "true", "y", "yes",
];

/// oslo's strict `bool_from_string`: `Some` for one of [`BOOL_WORDS`] (any
/// case, surrounding blanks ignored), `None` for anything else.
pub fn bool_word(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "t" | "true" | "on" | "y" | "yes" => Some(true),
        "0" | "f" | "false" | "off" | "n" | "no" => Some(false),
        _ => None,
    }
}

/// oslo's lenient `bool_from_string`: a true word is true, anything else
/// (a false word, a typo) is false. Capabilities are read this way.
pub fn bool_from_string(s: &str) -> bool {
    bool_word(s) == Some(true)
}

/// `oslo.config`'s `Boolean` option type, which knows fewer words than
/// [`bool_word`]: `true`/`1`/`on`/`yes` and `false`/`0`/`off`/`no`.
pub fn config_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Python truthiness (`if value:`) of a JSON value as `json.loads` gives it,
/// which Ironic uses for "was this field given".
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::String(s) => !s.is_empty(),
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_listed_word_is_read_and_nothing_else() {
        for w in BOOL_WORDS {
            assert!(bool_word(w).is_some(), "{w}");
            assert_eq!(bool_word(&format!(" {} ", w.to_uppercase())), bool_word(w));
        }
        assert_eq!(bool_word("yes"), Some(true));
        assert_eq!(bool_word("Off"), Some(false));
        assert_eq!(bool_word("enabled"), None);
        assert_eq!(bool_word(""), None);
    }

    #[test]
    fn lenient_reading_calls_unknown_words_false() {
        for t in ["1", "t", "TRUE", "On", "y", "yes"] {
            assert!(bool_from_string(t), "{t}");
        }
        for f in ["0", "no", "", "maybe", "truee"] {
            assert!(!bool_from_string(f), "{f}");
        }
    }

    #[test]
    fn configuration_knows_fewer_words() {
        assert_eq!(config_bool("Yes"), Some(true));
        assert_eq!(config_bool("off"), Some(false));
        assert_eq!(config_bool("y"), None);
        assert_eq!(config_bool("t"), None);
    }

    #[test]
    fn truthiness_is_pythons() {
        for v in [
            json!(null),
            json!(false),
            json!(""),
            json!(0),
            json!(0.0),
            json!([]),
            json!({}),
        ] {
            assert!(!truthy(&v), "{v}");
        }
        for v in [
            json!(true),
            json!(" "),
            json!(-1),
            json!(0.5),
            json!([0]),
            json!({"a": null}),
        ] {
            assert!(truthy(&v), "{v}");
        }
    }
}
