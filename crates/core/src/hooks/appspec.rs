//! The AppSpec of a CodeDeploy Lambda deployment: which function and alias it shifts, from
//! which version (`CurrentVersion`, the baseline) to which (`TargetVersion`, the canary).
//!
//! Two forms are read:
//! - **JSON**, as CloudFormation writes it for SAM's `DeploymentPreference`
//!   (`{"version": 0.0, "Resources": [{"<name>": {"Type": "AWS::Lambda::Function",
//!   "Properties": {"Name": …, "Alias": …, "CurrentVersion": …, "TargetVersion": …}}}],
//!   "Hooks": […]}`);
//! - **block YAML** as in CodeDeploy's documentation: `Resources:` with one `- <name>:` list
//!   item whose `Properties` hold the four keys as plain or quoted scalars, one per line.
//!   Flow collections, anchors, multi-line scalars and other YAML features are not read; an
//!   AppSpec that uses them is reported as unreadable, never guessed at.
//!
//! A Lambda AppSpec names exactly one function; more than one resource is an error.

use serde_json::Value;

/// The four properties of the AppSpec's one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppSpecTarget {
    /// The resource's logical name (the key of its list item).
    pub resource: String,
    /// `Properties.Name`: the function name.
    pub function_name: String,
    /// `Properties.Alias`.
    pub alias: String,
    /// `Properties.CurrentVersion`: the version serving now (the baseline).
    pub current_version: String,
    /// `Properties.TargetVersion`: the version being deployed (the canary).
    pub target_version: String,
}

/// An AppSpec that cannot be read, with the path of the offending entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct AppSpecError {
    /// Where (`Resources[0].MyFunction.Properties.TargetVersion`, `Resources`, `$`).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

fn err(path: impl Into<String>, message: impl Into<String>) -> AppSpecError {
    AppSpecError {
        path: path.into(),
        message: message.into(),
    }
}

const FIELDS: [&str; 4] = ["Name", "Alias", "CurrentVersion", "TargetVersion"];

/// Reads the AppSpec text: JSON when it starts with `{`, block YAML otherwise.
pub fn parse(text: &str) -> Result<AppSpecTarget, AppSpecError> {
    let trimmed = text.trim_start_matches('\u{feff}').trim();
    if trimmed.is_empty() {
        return Err(err("$", "the AppSpec is empty"));
    }
    if trimmed.starts_with('{') {
        parse_json(trimmed)
    } else {
        parse_yaml(trimmed)
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn parse_json(text: &str) -> Result<AppSpecTarget, AppSpecError> {
    let doc: Value =
        serde_json::from_str(text).map_err(|e| err("$", format!("not valid JSON: {e}")))?;
    let resources = doc
        .get("Resources")
        .ok_or_else(|| err("Resources", "missing: the AppSpec names no function"))?
        .as_array()
        .ok_or_else(|| err("Resources", "must be a list"))?;
    let item = match resources.as_slice() {
        [one] => one,
        [] => return Err(err("Resources", "is empty: the AppSpec names no function")),
        many => {
            return Err(err(
                "Resources",
                format!(
                    "a Lambda AppSpec names exactly one function, found {}",
                    many.len()
                ),
            ));
        }
    };
    let (resource, body) = match item.as_object() {
        Some(m) if m.len() == 1 => m.iter().next().map(|(k, v)| (k.clone(), v)),
        _ => None,
    }
    .ok_or_else(|| {
        err(
            "Resources[0]",
            "must map one resource name to its definition",
        )
    })?;
    let at = format!("Resources[0].{resource}.Properties");
    let props = body
        .get("Properties")
        .and_then(Value::as_object)
        .ok_or_else(|| err(&at, "missing"))?;
    let mut values = Vec::with_capacity(4);
    for field in FIELDS {
        let v = props
            .get(field)
            .ok_or_else(|| err(format!("{at}.{field}"), "missing"))?;
        let s = scalar(v)
            .ok_or_else(|| err(format!("{at}.{field}"), "must be a string or a number"))?;
        values.push(s);
    }
    build(resource, values, &at)
}

fn build(resource: String, values: Vec<String>, at: &str) -> Result<AppSpecTarget, AppSpecError> {
    for (field, v) in FIELDS.iter().zip(&values) {
        if v.is_empty() {
            return Err(err(format!("{at}.{field}"), "must not be empty"));
        }
    }
    let mut it = values.into_iter();
    let mut next = || it.next().unwrap_or_default();
    Ok(AppSpecTarget {
        resource,
        function_name: next(),
        alias: next(),
        current_version: next(),
        target_version: next(),
    })
}

/// Drops a `#` comment that starts the line or follows a space, outside quotes.
fn strip_comment(line: &str) -> &str {
    let mut quote: Option<char> = None;
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '#' && prev.is_whitespace() => return &line[..i],
            None => {}
        }
        prev = c;
    }
    line
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return v[1..v.len() - 1].to_string();
        }
    }
    v.to_string()
}

/// Splits `key: value` (value may be empty).
fn key_value(text: &str) -> Option<(&str, &str)> {
    let (k, v) = text.split_once(':')?;
    let k = k.trim();
    if k.is_empty() || (k.contains(' ') && !k.starts_with(['"', '\''])) {
        return None;
    }
    if !(v.is_empty() || v.starts_with(' ')) {
        return None;
    }
    Some((k.trim_matches(['"', '\'']), v.trim()))
}

fn parse_yaml(text: &str) -> Result<AppSpecTarget, AppSpecError> {
    let mut section: Option<String> = None;
    let mut resources: Vec<(String, [Option<String>; 4])> = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = strip_comment(raw).trim_end();
        let body = line.trim_start();
        if body.is_empty() || body == "---" {
            continue;
        }
        let indent = line.len() - body.len();
        if line.contains('\t') {
            return Err(err(
                format!("line {}", n + 1),
                "tabs are not allowed in YAML indentation",
            ));
        }
        if indent == 0 {
            let (key, value) = key_value(body).ok_or_else(|| {
                err(
                    format!("line {}", n + 1),
                    format!("expected `key: value`, found {body:?} (only block YAML is read)"),
                )
            })?;
            if key == "Resources" && !value.is_empty() {
                return Err(err(
                    "Resources",
                    "must be a block list with one `- <resource name>:` item (flow style is not read)",
                ));
            }
            section = Some(key.to_string());
            continue;
        }
        if section.as_deref() != Some("Resources") {
            continue;
        }
        if let Some(item) = body
            .strip_prefix("- ")
            .or(if body == "-" { Some("") } else { None })
        {
            let item = item.trim();
            match key_value(item) {
                Some((name, "")) => {
                    resources.push((name.to_string(), Default::default()));
                    continue;
                }
                _ => {
                    return Err(err(
                        format!("Resources[{}]", resources.len()),
                        format!(
                            "expected `- <resource name>:` on line {}, found {body:?} (only block YAML is read)",
                            n + 1
                        ),
                    ));
                }
            }
        }
        let Some((key, value)) = key_value(body) else {
            continue;
        };
        let Some(slot) = FIELDS.iter().position(|f| *f == key) else {
            continue;
        };
        let Some((name, fields)) = resources.last_mut() else {
            return Err(err(
                "Resources",
                format!(
                    "{key} on line {} outside a `- <resource name>:` item",
                    n + 1
                ),
            ));
        };
        if value.starts_with(['[', '{', '|', '>', '&', '*']) {
            return Err(err(
                format!("Resources[0].{name}.Properties.{key}"),
                format!("must be a plain or quoted scalar, found {value:?}"),
            ));
        }
        if fields[slot].is_some() {
            return Err(err(
                format!("Resources[0].{name}.Properties.{key}"),
                format!("given twice (line {})", n + 1),
            ));
        }
        fields[slot] = Some(unquote(value));
    }
    if section.is_none() {
        return Err(err("$", "not an AppSpec: no top-level keys"));
    }
    let (resource, fields) = match resources.len() {
        1 => resources.remove(0),
        0 => return Err(err("Resources", "missing: the AppSpec names no function")),
        n => {
            return Err(err(
                "Resources",
                format!("a Lambda AppSpec names exactly one function, found {n}"),
            ));
        }
    };
    let at = format!("Resources[0].{resource}.Properties");
    let mut values = Vec::with_capacity(4);
    for (field, v) in FIELDS.iter().zip(fields) {
        values.push(v.ok_or_else(|| err(format!("{at}.{field}"), "missing"))?);
    }
    build(resource, values, &at)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The JSON form CloudFormation writes for a SAM `DeploymentPreference`.
    pub(crate) const SAM_JSON: &str = r#"{"version":0.0,"Resources":[{"OrdersApi":{"Type":"AWS::Lambda::Function","Properties":{"Name":"orders-api","Alias":"live","CurrentVersion":"41","TargetVersion":"42"}}}],"Hooks":[{"BeforeAllowTraffic":"CodeDeployHook_canary-gate-before"},{"AfterAllowTraffic":"CodeDeployHook_canary-gate-after"}]}"#;

    /// The YAML form of CodeDeploy's AppSpec reference.
    const DOC_YAML: &str = "version: 0.0\n# the one function\nResources:\n  - myLambdaFunction:\n      Type: AWS::Lambda::Function\n      Properties:\n        Name: \"orders-api\"   # quoted\n        Alias: 'live'\n        CurrentVersion: 41\n        TargetVersion: \"42\"\nHooks:\n  - BeforeAllowTraffic: \"CodeDeployHook_before\"\n  - AfterAllowTraffic: \"CodeDeployHook_after\"\n";

    fn expected(resource: &str) -> AppSpecTarget {
        AppSpecTarget {
            resource: resource.into(),
            function_name: "orders-api".into(),
            alias: "live".into(),
            current_version: "41".into(),
            target_version: "42".into(),
        }
    }

    #[test]
    fn json_from_cloudformation_is_read() {
        assert_eq!(parse(SAM_JSON).expect("json"), expected("OrdersApi"));
        let numbers = SAM_JSON
            .replace(r#""CurrentVersion":"41""#, r#""CurrentVersion":41"#)
            .replace(r#""TargetVersion":"42""#, r#""TargetVersion":42"#);
        assert_eq!(parse(&numbers).expect("numbers"), expected("OrdersApi"));
    }

    #[test]
    fn block_yaml_from_the_reference_is_read() {
        assert_eq!(parse(DOC_YAML).expect("yaml"), expected("myLambdaFunction"));
    }

    #[test]
    fn missing_fields_are_named_with_their_path() {
        let e = parse(&SAM_JSON.replace(r#","TargetVersion":"42""#, "")).expect_err("json");
        assert_eq!(e.path, "Resources[0].OrdersApi.Properties.TargetVersion");
        let e = parse(&DOC_YAML.replace("        Alias: 'live'\n", "")).expect_err("yaml");
        assert_eq!(e.path, "Resources[0].myLambdaFunction.Properties.Alias");
        let e =
            parse(&SAM_JSON.replace(r#""Name":"orders-api""#, r#""Name":"""#)).expect_err("empty");
        assert_eq!(e.path, "Resources[0].OrdersApi.Properties.Name");
        assert!(e.message.contains("empty"), "{e}");
    }

    #[test]
    fn more_than_one_function_or_none_is_refused() {
        let two = SAM_JSON.replace(
            r#"}}}],"#,
            r#"}}},{"Other":{"Properties":{"Name":"x","Alias":"a","CurrentVersion":"1","TargetVersion":"2"}}}],"#,
        );
        let e = parse(&two).expect_err("two");
        assert_eq!(e.path, "Resources");
        assert!(e.message.contains("found 2"), "{e}");
        let e = parse(r#"{"version":0.0,"Resources":[]}"#).expect_err("none");
        assert_eq!(e.path, "Resources");
        let yaml_two = DOC_YAML.replace(
            "Hooks:",
            "  - second:\n      Properties:\n        Name: y\nHooks:",
        );
        let e = parse(&yaml_two).expect_err("two in yaml");
        assert!(e.message.contains("found 2"), "{e}");
    }

    #[test]
    fn unreadable_text_is_an_error_not_a_guess() {
        assert_eq!(parse("").expect_err("empty").path, "$");
        assert!(
            parse("{not json")
                .expect_err("broken json")
                .message
                .contains("not valid JSON")
        );
        let flow = "version: 0.0\nResources: [{f: {Properties: {Name: a}}}]\n";
        assert_eq!(parse(flow).expect_err("flow style").path, "Resources");
        let block = DOC_YAML.replace("TargetVersion: \"42\"", "TargetVersion: |");
        let e = parse(&block).expect_err("block scalar");
        assert_eq!(
            e.path,
            "Resources[0].myLambdaFunction.Properties.TargetVersion"
        );
        assert!(parse("just some words").is_err());
    }
}
