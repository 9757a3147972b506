//! The values a volume target may hold, checked wherever a target is created
//! or changed (the API calls [`boot_index`] on the request, the aggregate on
//! the patched target), so that both paths refuse the same values in the same
//! words.

use crate::domain::error::DomainError;
use serde_json::{Map, Value};

/// The highest LUN a target may name. The iPXE script addresses a LUN as one
/// hexadecimal group of `iscsi:<host>::<port>:<lun>:<iqn>`, which iPXE reads
/// as 16 bits: a larger LUN would silently boot another one.
pub const MAX_TARGET_LUN: u64 = 0xffff;

/// The largest integer a JSON float holds exactly (2^53).
const MAX_EXACT_FLOAT: f64 = 9_007_199_254_740_992.0;

/// A boot index: an integer that fits in 64 signed bits (`1.0` counts, as in
/// jsonschema, up to 2^53 where floats stop being exact). Values beyond that
/// range are refused, not truncated (they were once stored as 0, which made
/// the target the node's boot volume).
pub fn boot_index(v: &Value) -> Result<i64, DomainError> {
    let out_of_range = || {
        DomainError::Invalid(format!(
            "Invalid boot_index: {v} is out of range; a boot index is a 64-bit signed integer, from {} to {}.",
            i64::MIN,
            i64::MAX
        ))
    };
    let Value::Number(n) = v else {
        return Err(not_an_integer(v));
    };
    if let Some(i) = n.as_i64() {
        return Ok(i);
    }
    if n.is_u64() {
        return Err(out_of_range());
    }
    let f = n.as_f64().unwrap_or(f64::NAN);
    if f.fract() != 0.0 || !f.is_finite() {
        return Err(not_an_integer(v));
    }
    // A number the parser could only read as a float (`1.0`, `1e3`, or an
    // integer beyond 64 bits) is exact only up to 2^53: beyond that it may be
    // the rounding of an out-of-range integer (-2^63 - 1 reads as -2^63).
    if f.abs() <= MAX_EXACT_FLOAT {
        Ok(f as i64)
    } else {
        Err(out_of_range())
    }
}

fn not_an_integer(v: &Value) -> DomainError {
    DomainError::Invalid(format!("Invalid boot_index: {v} is not of type 'integer'"))
}

/// The checks on a target's `properties`: `target_lun` and every element of
/// `target_luns`, when they are numbers, must be integers from 0 to
/// [`MAX_TARGET_LUN`]. Other values are left to the storage driver (as Ironic
/// does; the iPXE writer refuses what it cannot render).
pub fn check_properties(properties: &Map<String, Value>) -> Result<(), DomainError> {
    let lun_ok = |v: &Value| v.as_u64().is_some_and(|l| l <= MAX_TARGET_LUN);
    let refuse = |key: &str, v: &Value| {
        DomainError::Invalid(format!(
            "Invalid {key}: {v}. iPXE addresses a LUN with 16 bits, so a LUN must be an integer from 0 to {MAX_TARGET_LUN}."
        ))
    };
    if let Some(v @ Value::Number(_)) = properties.get("target_lun") {
        if !lun_ok(v) {
            return Err(refuse("target_lun", v));
        }
    }
    if let Some(Value::Array(items)) = properties.get("target_luns") {
        if let Some(v) = items.iter().find(|v| v.is_number() && !lun_ok(v)) {
            return Err(refuse("target_luns", v));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn boot_indexes_fit_in_64_bits() {
        assert_eq!(boot_index(&json!(i64::MAX)).unwrap(), i64::MAX);
        assert_eq!(boot_index(&json!(i64::MIN)).unwrap(), i64::MIN);
        assert_eq!(boot_index(&json!(1.0)).unwrap(), 1);
        let big: Value = serde_json::from_str("1e300").unwrap();
        for v in [json!(u64::MAX), json!(9_223_372_036_854_775_808u64), big] {
            assert!(
                boot_index(&v).unwrap_err().to_string().contains("64-bit"),
                "{v}"
            );
        }
        let below: Value = serde_json::from_str("-9223372036854775809").unwrap();
        assert!(boot_index(&below).is_err());
        for v in [json!(2.5), json!("1"), json!(null), json!(true)] {
            assert!(
                boot_index(&v)
                    .unwrap_err()
                    .to_string()
                    .contains("'integer'"),
                "{v}"
            );
        }
    }

    #[test]
    fn luns_fit_in_16_bits() {
        let ok = |p: Value| check_properties(p.as_object().unwrap());
        assert!(ok(json!({"target_lun": 65535, "target_luns": [0, 1]})).is_ok());
        assert!(ok(json!({"target_lun": "0"})).is_ok());
        for p in [
            json!({"target_lun": 65536}),
            json!({"target_lun": -1}),
            json!({"target_lun": 1.5}),
            json!({"target_luns": [1, 70000]}),
        ] {
            assert!(ok(p.clone()).is_err(), "{p}");
        }
    }
}
