//! Checks of the document as written that serde's derived parsers let through: an array
//! where the config has an object (serde accepts a struct's fields as a sequence, so
//! `"auto_rollback": [false]` read as `enabled: false`), and control characters in any text
//! (a metric name or purpose with an escape sequence would reach terminals, reports and SNS
//! bodies as written). Both are judged against the parsed config's own serialisation, so
//! no second description of the schema exists.

use serde_json::Value;

use crate::error::ConfigError;

/// Checks `raw` (the document) against `canonical` (the parsed config serialised back):
/// where the config holds an object, the document must have written one, and no string
/// anywhere in the document may contain a control character. `path` is the document's
/// place (`$` for the root); errors name the place at fault.
pub(crate) fn check(raw: &Value, canonical: &Value, path: &str) -> Result<(), ConfigError> {
    match (raw, canonical) {
        (Value::String(s), _) => {
            if let Some(c) = s.chars().find(|c| c.is_control()) {
                return Err(ConfigError::new(
                    path,
                    format!(
                        "contains the control character U+{:04X}: names and texts must be printable",
                        u32::from(c)
                    ),
                ));
            }
        }
        (Value::Array(_), Value::Object(_)) => {
            return Err(ConfigError::new(
                path,
                "invalid type: an array, expected an object",
            ));
        }
        (Value::Object(raw), canonical) => {
            for (k, v) in raw {
                let at = if path == "$" {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                check(v, canonical.get(k).unwrap_or(&Value::Null), &at)?;
            }
        }
        (Value::Array(raw), canonical) => {
            for (i, v) in raw.iter().enumerate() {
                let c = canonical.get(i).unwrap_or(&Value::Null);
                check(v, c, &format!("{path}[{i}]"))?;
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_array_for_an_object_is_refused_with_its_place() {
        let canonical = json!({"auto_rollback": {"enabled": true}, "phases": [{"w": 5}]});
        let e = check(&json!({"auto_rollback": [false]}), &canonical, "$").unwrap_err();
        assert_eq!(e.path, "auto_rollback");
        let e = check(&json!({"phases": [[5]]}), &canonical, "$").unwrap_err();
        assert_eq!(e.path, "phases[0]");
        check(
            &json!({"auto_rollback": {"enabled": false}}),
            &canonical,
            "$",
        )
        .expect("object");
        // Arrays where the config has arrays, and keys the config does not serialise, pass.
        check(
            &json!({"phases": [{"w": 5}], "other": [1]}),
            &canonical,
            "$",
        )
        .expect("arrays");
    }

    #[test]
    fn control_characters_are_refused_anywhere_in_the_document() {
        let e = check(
            &json!({"metrics": [{"name": "lat\u{1b}[31mency"}]}),
            &Value::Null,
            "$",
        )
        .unwrap_err();
        assert_eq!(e.path, "metrics[0].name");
        assert!(e.message.contains("U+001B"), "{e:?}");
        let e = check(&json!({"purpose": "a\nb"}), &Value::Null, "$").unwrap_err();
        assert!(e.message.contains("U+000A"), "{e:?}");
        check(
            &json!({"purpose": "first exposure — 5 %"}),
            &Value::Null,
            "$",
        )
        .expect("text");
    }
}
