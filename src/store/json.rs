//! The one JSON decoder for stored data: events, their metadata, read-model
//! documents and exported logs.
//!
//! serde_json refuses input nested more than 128 levels deep, a guard meant for
//! untrusted input. Stored data is not untrusted: it was checked when it was
//! written (the API refuses bodies deeper than its own, much lower limit, and
//! every event is decoded by this very function before it is committed, see
//! [`round_trips`]). Refusing it when it is read back is what turned one
//! deeply nested request into a log nobody could read: the envelope of a
//! stored event (`{"NodeEnrolled": {"extra": …}}`) adds levels to what the
//! client sent, so a body just inside the parser's limit made an event just
//! outside it. So stored data is decoded up to a much higher limit,
//! [`STORED_DEPTH_MAX`], far above anything ironledger has ever written (the
//! API's limit plus the envelope, or serde_json's 128 levels plus the envelope
//! for logs written before the API had a limit), on a stack that grows on the
//! heap as nesting needs it (`serde_stacker`). Beyond that limit the data can
//! only be a hand-edited database or a crafted import file, and it is refused
//! as corrupt, checked on the raw bytes before anything is built: a value
//! nested without bound could not even be dropped or written out again
//! without overflowing a thread's stack.

use serde::de::DeserializeOwned;
use serde_json::Value;

/// The deepest nesting stored JSON may have (see the module docs).
pub const STORED_DEPTH_MAX: usize = 512;

/// Why stored JSON could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error("nested {0} levels deep, more than the {STORED_DEPTH_MAX} stored data may have")]
    TooDeep(usize),
}

/// Decodes stored JSON text (see the module docs for the depth it accepts).
pub fn decode(text: &str) -> Result<Value, DecodeError> {
    decode_as(text.as_bytes())
}

/// Decodes stored JSON bytes (see the module docs for the depth it accepts).
pub fn decode_slice(bytes: &[u8]) -> Result<Value, DecodeError> {
    decode_as(bytes)
}

/// Decodes stored JSON into any type (see the module docs for the depth it
/// accepts).
pub fn decode_as<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    let levels = text_depth(bytes);
    if levels > STORED_DEPTH_MAX {
        return Err(DecodeError::TooDeep(levels));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    de.disable_recursion_limit();
    let value = T::deserialize(serde_stacker::Deserializer::new(&mut de))?;
    de.end()?;
    Ok(value)
}

/// How deeply JSON text nests arrays and objects, read from the bytes alone
/// (brackets inside strings do not count). Malformed text gets some number;
/// the decoder then says what is wrong with it.
fn text_depth(bytes: &[u8]) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &b in bytes {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// The JSON text a value is stored as.
pub fn encode(value: &Value) -> String {
    // Serializing a `Value` cannot fail (its map keys are strings).
    serde_json::to_string(value).expect("serde_json::Value always serializes")
}

/// Whether `value`, written as the stores write it, reads back as exactly
/// itself through [`decode`]. `Err` says why not.
pub fn round_trips(value: &Value) -> Result<(), String> {
    match decode(&encode(value)) {
        Ok(back) if back == *value => Ok(()),
        Ok(_) => Err("it reads back as a different value".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// How many arrays and objects are nested in one another: `[]`, `{}` and
/// `{"a": [1]}`'s `[1]` are 1, `{"a": [1]}` is 2 (a scalar inside adds no
/// level; a scalar alone counts 1). Iterative, so that it cannot overflow the
/// stack either.
pub fn depth(value: &Value) -> usize {
    let mut deepest = 1;
    let mut todo = vec![(value, 1usize)];
    while let Some((v, d)) = todo.pop() {
        deepest = deepest.max(d);
        let children: Box<dyn Iterator<Item = &Value>> = match v {
            Value::Array(items) => Box::new(items.iter()),
            Value::Object(map) => Box::new(map.values()),
            _ => continue,
        };
        todo.extend(
            children
                .filter(|c| c.is_array() || c.is_object())
                .map(|c| (c, d + 1)),
        );
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(levels: usize) -> String {
        format!("{}{}", "[".repeat(levels), "]".repeat(levels))
    }

    #[test]
    fn stored_json_is_read_back_far_beyond_the_parsers_limit() {
        // serde_json's own limit is 128 levels.
        let text = nested(STORED_DEPTH_MAX);
        assert!(serde_json::from_str::<Value>(&text).is_err());
        let value = decode(&text).expect("decodes");
        assert_eq!(depth(&value), STORED_DEPTH_MAX);
        assert!(round_trips(&value).is_ok());
    }

    #[test]
    fn deeper_than_stored_data_can_be_is_refused_before_decoding() {
        let err = decode(&nested(1_000_000)).unwrap_err();
        assert!(matches!(err, DecodeError::TooDeep(1_000_000)), "{err}");
        // Brackets in strings are text, not nesting.
        let text = format!("[\"{}\\\"{}\"]", "[".repeat(5000), "{".repeat(5000));
        assert_eq!(decode(&text).unwrap()[0].as_str().unwrap().len(), 10_001);
    }

    #[test]
    fn trailing_garbage_is_an_error() {
        assert!(decode("[1] x").is_err());
    }

    #[test]
    fn depth_counts_levels() {
        assert_eq!(depth(&serde_json::json!(1)), 1);
        assert_eq!(depth(&serde_json::json!([])), 1);
        assert_eq!(depth(&serde_json::json!({"a": [1]})), 2);
        assert_eq!(depth(&decode(&nested(125)).unwrap()), 125);
    }

    #[test]
    fn ordinary_values_round_trip() {
        assert!(round_trips(&serde_json::json!({"a": [1, 2.5, "x"]})).is_ok());
    }
}
