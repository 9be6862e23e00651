//! Random and mutated JSON for the property tests: every path of a document, a replacement
//! at one of them, values that break assumptions, arbitrary documents, and the case count.

use proptest::prelude::*;
use serde_json::{Value, json};

/// Every JSON path of `v` (objects' keys and arrays' indices).
pub fn paths(v: &Value, at: &mut Vec<Vec<Value>>, prefix: &mut Vec<Value>) {
    at.push(prefix.clone());
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                prefix.push(Value::String(k.clone()));
                paths(x, at, prefix);
                prefix.pop();
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                prefix.push(json!(i));
                paths(x, at, prefix);
                prefix.pop();
            }
        }
        _ => {}
    }
}

pub fn replace(v: &mut Value, path: &[Value], with: Value) {
    let mut at = v;
    for p in path {
        at = match p {
            Value::String(k) => &mut at[k.as_str()],
            Value::Number(i) => &mut at[i.as_u64().unwrap_or(0) as usize],
            _ => return,
        };
    }
    *at = with;
}

/// Values that break assumptions: extremes, wrong types, empties.
pub fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|i| json!(i)),
        any::<u64>().prop_map(|i| json!(i)),
        prop_oneof![
            Just(0i64),
            Just(-1),
            Just(1),
            Just(i64::MAX),
            Just(i64::MIN)
        ]
        .prop_map(|i| json!(i)),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::String),
        Just(json!([])),
        Just(json!({})),
        Just(json!([1, "x", null])),
    ]
}

/// Arbitrary JSON documents.
pub fn document() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("op".to_string()),
                    Just("execution".to_string()),
                    Just("run".to_string()),
                    Just("config".to_string()),
                    "[a-z]{1,8}"
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Cases per property: `PROPTEST_CASES`, or `default`.
pub fn cases(default: u32) -> ProptestConfig {
    let n = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    ProptestConfig::with_cases(n)
}
