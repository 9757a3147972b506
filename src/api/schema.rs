//! Ironic's request-body schemas, checked the way jsonschema reports them.
//!
//! Ironic validates bodies with `jsonschema` and reports the single "best"
//! error (`best_match`) with Python's `repr` of the offending value (`Schema
//! error for connector: 123 is not of type 'string'`). Every body schema the
//! API checks (node, node patch, port, volume connector and target) is a flat
//! object schema with `additionalProperties: false`, so one checker serves
//! them all: [`Schema::check`] reproduces `best_match`'s choice for that shape.
//!
//! Also here: the checks Ironic runs on body fields after the schema
//! (`args.uuid`). Which integers a field may hold is a domain rule (e.g.
//! `domain::node::target_rules::boot_index`).
//!
//! The same definitions are published as JSON Schema ([`Schema::json_schema`])
//! in the OpenAPI document (`super::openapi`), so what a client reads there
//! is what the API checks, and the two cannot drift.

use super::error::ApiError;
use super::lookup::uuid_like;
use super::pyfmt::{self, additional_properties, required};
use serde_json::{Map, Value};

/// A JSON-schema type name, as jsonschema spells it in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    String,
    Object,
    Null,
    Integer,
    Boolean,
}

impl Ty {
    pub fn name(self) -> &'static str {
        match self {
            Ty::String => "string",
            Ty::Object => "object",
            Ty::Null => "null",
            Ty::Integer => "integer",
            Ty::Boolean => "boolean",
        }
    }

    fn accepts(self, v: &Value) -> bool {
        pyfmt::is_type(v, self.name())
    }
}

/// A JSON Schema `type` keyword: one name, or a list of alternatives.
fn type_keyword(types: &[Ty]) -> Value {
    match types {
        [one] => Value::from(one.name()),
        many => many.iter().map(|t| Value::from(t.name())).collect(),
    }
}

/// One property of an object schema.
pub struct Prop {
    pub name: &'static str,
    pub types: &'static [Ty],
    /// `maxLength`, for strings.
    pub max_length: Option<usize>,
    /// The types are alternatives of an `anyOf` (`{"anyOf": [{"type":
    /// "null"}, {"type": "object"}]}`) rather than one `type` list, which
    /// changes the message: jsonschema reports that no alternative matched,
    /// and Ironic adds the best error among the alternatives as the
    /// "possible root cause" (the first, as all are equally relevant).
    pub any_of: bool,
}

impl Prop {
    pub const fn new(name: &'static str, types: &'static [Ty]) -> Prop {
        Prop {
            name,
            types,
            max_length: None,
            any_of: false,
        }
    }

    pub const fn max(name: &'static str, types: &'static [Ty], max: usize) -> Prop {
        Prop {
            name,
            types,
            max_length: Some(max),
            any_of: false,
        }
    }

    pub const fn any_of(name: &'static str, types: &'static [Ty]) -> Prop {
        Prop {
            name,
            types,
            max_length: None,
            any_of: true,
        }
    }

    /// This property as JSON Schema (2020-12, as OpenAPI 3.1 reads it): exactly
    /// the keywords [`Prop::problem`] checks, nothing more.
    pub fn json_schema(&self) -> Value {
        let mut s = Map::new();
        if self.any_of {
            let alternatives = self
                .types
                .iter()
                .map(|t| serde_json::json!({"type": t.name()}))
                .collect();
            s.insert("anyOf".into(), Value::Array(alternatives));
        } else {
            s.insert("type".into(), type_keyword(self.types));
        }
        if let Some(max) = self.max_length {
            s.insert("maxLength".into(), max.into());
        }
        Value::Object(s)
    }

    /// What is wrong with this property's value, in jsonschema's words.
    fn problem(&self, value: &Value) -> Option<String> {
        if self.types.iter().any(|t| t.accepts(value)) {
            return match (self.max_length, value) {
                (Some(max), Value::String(s)) if s.chars().count() > max => {
                    Some(format!("{} is too long", pyfmt::repr(value)))
                }
                _ => None,
            };
        }
        let names: Vec<&str> = self.types.iter().map(|t| t.name()).collect();
        if self.any_of {
            Some(format!(
                "{} is not valid under any of the given schemas. Possible root cause: {}",
                pyfmt::repr(value),
                pyfmt::type_error(value, &names[..1])
            ))
        } else {
            Some(pyfmt::type_error(value, &names))
        }
    }
}

/// A flat object schema with `additionalProperties: false`, as Ironic's node,
/// port and volume schemas are.
pub struct Schema {
    pub props: &'static [Prop],
    pub required: &'static [&'static str],
    /// `oneOf: [{required: [a]}, {required: [b]}]` (ports: `node_ident` / `node_uuid`).
    pub one_of_required: Option<[&'static str; 2]>,
}

impl Schema {
    /// The schema as JSON Schema (2020-12, as OpenAPI 3.1 reads it), with the
    /// keywords [`Schema::check`] applies: `type: object`, the properties,
    /// `required`, the `oneOf` of two required names, and
    /// `additionalProperties: false`.
    pub fn json_schema(&self) -> Value {
        let mut s = Map::new();
        s.insert("type".into(), "object".into());
        let props: Map<String, Value> = self
            .props
            .iter()
            .map(|p| (p.name.to_string(), p.json_schema()))
            .collect();
        s.insert("properties".into(), Value::Object(props));
        if !self.required.is_empty() {
            s.insert("required".into(), self.required.into());
        }
        if let Some([a, b]) = self.one_of_required {
            s.insert(
                "oneOf".into(),
                serde_json::json!([{"required": [a]}, {"required": [b]}]),
            );
        }
        s.insert("additionalProperties".into(), false.into());
        Value::Object(s)
    }

    /// The message of jsonschema's best match, or `None` when `v` is valid.
    ///
    /// Errors on the object itself (type, `required`, `oneOf`,
    /// `additionalProperties`, in the order jsonschema meets the keywords) win
    /// over errors of one property; among properties, `best_match` keeps the
    /// greatest path, i.e. the property name that sorts last (Ironic: `{"driver":
    /// 5, "extra": 5}` is refused for `extra`).
    pub fn check(&self, v: &Value) -> Option<String> {
        let Value::Object(m) = v else {
            return Some(pyfmt::type_error(v, &["object"]));
        };
        if let Some(missing) = self.required.iter().find(|r| !m.contains_key(**r)) {
            return Some(required(missing));
        }
        if let Some([a, b]) = self.one_of_required {
            match (m.contains_key(a), m.contains_key(b)) {
                (false, false) => {
                    return Some(format!(
                        "{} is not valid under any of the given schemas. Possible root cause: {}",
                        pyfmt::repr(v),
                        required(a)
                    ))
                }
                (true, true) => {
                    return Some(format!(
                    "{} is valid under each of {{'required': ['{b}']}}, {{'required': ['{a}']}}",
                    pyfmt::repr(v)
                ))
                }
                _ => {}
            }
        }
        let extras: Vec<&str> = m
            .keys()
            .map(String::as_str)
            .filter(|k| !self.props.iter().any(|p| p.name == *k))
            .collect();
        if !extras.is_empty() {
            return Some(additional_properties(&extras));
        }
        self.props
            .iter()
            .filter_map(|p| Some((p.name, p.problem(m.get(p.name)?)?)))
            .max_by_key(|(name, _)| *name)
            .map(|(_, msg)| msg)
    }
}

/// Ironic's `patched_validate_with_schema`: drops what the schema does not
/// know, then validates; the error reads `Schema error for patch: …`.
pub fn validate_patched(doc: &mut Map<String, Value>, schema: &Schema) -> Result<(), ApiError> {
    doc.retain(|k, _| schema.props.iter().any(|p| p.name == k));
    match schema.check(&Value::Object(doc.clone())) {
        Some(m) => Err(ApiError::bad_request(format!(
            "Schema error for patch: {m}"
        ))),
        None => Ok(()),
    }
}

/// oslo's `is_uuid_like`, on a JSON value.
pub fn is_uuid_like(v: &Value) -> bool {
    v.as_str().is_some_and(uuid_like)
}

/// Ironic's `args.uuid` on a body field: `Expected UUID for <name>: <value>`.
pub fn check_uuid_field(m: &Map<String, Value>, name: &str) -> Result<(), ApiError> {
    match m.get(name) {
        None | Some(Value::Null) => Ok(()),
        Some(v) if is_uuid_like(v) => Ok(()),
        Some(v) => Err(ApiError::bad_request(format!(
            "Expected UUID for {name}: {}",
            pyfmt::str_(v)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::volume::kinds::CONNECTOR_SCHEMA;
    use serde_json::json;

    #[test]
    fn best_match_as_ironic_picks_it() {
        // Every expectation below is what Ironic 39 answered.
        let c = |v: Value| CONNECTOR_SCHEMA.check(&v).unwrap_or_default();
        assert_eq!(
            c(json!({"node_uuid": 123, "foo": 1})),
            "'connector_id' is a required property"
        );
        assert_eq!(
            c(json!({"node_uuid": 123, "type": "iqn", "connector_id": "x", "foo": 1})),
            "Additional properties are not allowed ('foo' was unexpected)"
        );
        assert_eq!(
            c(json!({"node_uuid": 123, "type": 5, "connector_id": "x"})),
            "5 is not of type 'string'"
        );
        assert_eq!(
            c(json!({"node_uuid": "x", "type": "t", "connector_id": "x", "extra": []})),
            "[] is not of type 'object', 'null'"
        );
        assert_eq!(c(json!("str")), "'str' is not of type 'object'");
        assert_eq!(c(json!([1])), "[1] is not of type 'object'");
    }

    #[test]
    fn any_of_names_a_root_cause() {
        static S: Schema = Schema {
            props: &[
                Prop::new("extra", &[Ty::Object, Ty::Null]),
                Prop::any_of("network_data", &[Ty::Null, Ty::Object]),
            ],
            required: &[],
            one_of_required: None,
        };
        // As Ironic answered `{"driver": …, "network_data": 5, "extra": 5}`.
        assert_eq!(
            S.check(&json!({"network_data": 5, "extra": 5})).unwrap(),
            "5 is not valid under any of the given schemas. Possible root cause: 5 is not of type 'null'"
        );
        assert_eq!(S.check(&json!({"network_data": {}})), None);
    }
}
