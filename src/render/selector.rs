//! Patch and replacement targets: group/version/kind, name and namespace regexes, label and
//! annotation selectors, matched as kustomize v5 matches them (`resWrangler.Select`).
//!
//! - Every field is optional; an empty selector selects everything.
//! - `group`, `version`, `kind`, `name` and `namespace` are regular expressions anchored at both
//!   ends (`web` selects `web`, not `web-2`; `web-.*` selects both `web-1` and `web-2`).
//! - `namespace` is compared with the object's *effective* namespace: `default` for a namespaced
//!   object without one, and never matches a cluster-scoped kind.
//! - `labelSelector` / `annotationSelector` use the Kubernetes label selector syntax: `a=b`, `a==b`,
//!   `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`, `a>1`, `a<1`, with `,` meaning AND. Keys and
//!   values are validated like labels, as kustomize does (for annotations too).
//!
//! The same struct reads the legacy `patchesJson6902` target (group/version/kind/name/namespace).

use std::collections::BTreeMap;
use std::fmt;

use regex::Regex;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::manifest::ResId;
use crate::render::resource::{effective_namespace_ref as effective_namespace, split_api_version};

/// Why a selector cannot be used. The caller prefixes the kustomization file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// A `group`/`version`/`kind`/`name`/`namespace` pattern is not a regular expression.
    #[error("selector {field} `{pattern}` is not a valid regular expression: {message}")]
    InvalidRegex {
        field: &'static str,
        pattern: String,
        message: String,
    },
    /// A `labelSelector` or `annotationSelector` does not parse.
    #[error("{field} `{selector}` is invalid: {message}")]
    InvalidLabelSelector {
        field: &'static str,
        selector: String,
        message: String,
    },
}

/// A kustomize selector (`patches[].target`, `replacements[].targets[].select`, ...).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Selector {
    #[serde(deserialize_with = "null_as_empty", skip_serializing_if = "String::is_empty")]
    pub group: String,
    #[serde(deserialize_with = "null_as_empty", skip_serializing_if = "String::is_empty")]
    pub version: String,
    #[serde(deserialize_with = "null_as_empty", skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(deserialize_with = "null_as_empty", skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(deserialize_with = "null_as_empty", skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(deserialize_with = "null_as_empty", skip_serializing_if = "String::is_empty")]
    pub label_selector: String,
    #[serde(deserialize_with = "null_as_empty", skip_serializing_if = "String::is_empty")]
    pub annotation_selector: String,
}

/// `name: ~` reads as an empty (unset) field, as in kustomize's Go structs.
pub(crate) fn null_as_empty<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(deserializer)?.unwrap_or_default())
}

impl fmt::Display for Selector {
    /// The set fields, e.g. `kind=Deployment, name=web-.*, labelSelector=app=web`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fields = [
            ("group", &self.group),
            ("version", &self.version),
            ("kind", &self.kind),
            ("name", &self.name),
            ("namespace", &self.namespace),
            ("labelSelector", &self.label_selector),
            ("annotationSelector", &self.annotation_selector),
        ];
        let set: Vec<String> = fields
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if set.is_empty() {
            f.write_str("any object")
        } else {
            f.write_str(&set.join(", "))
        }
    }
}

impl Selector {
    /// Compiles the regexes and selectors once, for matching many objects.
    pub fn compile(&self) -> Result<CompiledSelector, SelectorError> {
        Ok(CompiledSelector {
            group: anchored("group", &self.group)?,
            version: anchored("version", &self.version)?,
            kind: anchored("kind", &self.kind)?,
            name: anchored("name", &self.name)?,
            namespace: anchored("namespace", &self.namespace)?,
            labels: LabelSelector::parse_field("labelSelector", &self.label_selector)?,
            annotations: LabelSelector::parse_field("annotationSelector", &self.annotation_selector)?,
        })
    }

    /// Whether `obj` (by its current identity) is selected. Compiles on every call: use
    /// [`Selector::compile`] to match many objects.
    pub fn matches(&self, obj: &Value) -> Result<bool, SelectorError> {
        Ok(self.compile()?.matches(obj))
    }
}

/// `^(?:pattern)$`, or nothing for an empty pattern (kustomize `anchorRegex`).
pub(crate) fn anchored(field: &'static str, pattern: &str) -> Result<Option<Regex>, SelectorError> {
    if pattern.is_empty() {
        return Ok(None);
    }
    Regex::new(&format!("^(?:{pattern})$"))
        .map(Some)
        .map_err(|e| SelectorError::InvalidRegex {
            field,
            pattern: pattern.to_string(),
            message: e.to_string(),
        })
}

/// A [`Selector`] ready to match objects.
#[derive(Clone, Debug)]
pub struct CompiledSelector {
    group: Option<Regex>,
    version: Option<Regex>,
    kind: Option<Regex>,
    name: Option<Regex>,
    namespace: Option<Regex>,
    labels: LabelSelector,
    annotations: LabelSelector,
}

fn str_at<'a>(obj: &'a Value, path: &[&str]) -> &'a str {
    let mut v = obj;
    for key in path {
        v = &v[*key];
    }
    v.as_str().unwrap_or("")
}

fn matches_opt(re: &Option<Regex>, text: &str) -> bool {
    re.as_ref().is_none_or(|re| re.is_match(text))
}

impl CompiledSelector {
    /// Whether `obj` is selected by its current identity, labels and annotations.
    pub fn matches(&self, obj: &Value) -> bool {
        self.matches_ids(obj, || None)
    }

    /// Whether `obj` is selected by its current identity or by its original one (before name
    /// prefixes/suffixes and namespace changes): kustomize tries both for name and namespace.
    /// `original` is only called when the current name or namespace is not selected.
    pub fn matches_with_original(&self, obj: &Value, original: impl FnOnce() -> ResId) -> bool {
        self.matches_ids(obj, || Some(original()))
    }

    /// The checks in order of cost: a patch target selects among every object of a build.
    fn matches_ids(&self, obj: &Value, original: impl FnOnce() -> Option<ResId>) -> bool {
        let api_version = str_at(obj, &["apiVersion"]);
        let kind = str_at(obj, &["kind"]);
        let (group, version) = split_api_version(api_version);
        let gvk_ok = matches_opt(&self.group, group)
            && matches_opt(&self.version, version)
            && matches_opt(&self.kind, kind);
        if !gvk_ok
            || !self.labels.matches_map(&obj["metadata"]["labels"])
            || !self.annotations.matches_map(&obj["metadata"]["annotations"])
        {
            return false;
        }
        let name = str_at(obj, &["metadata", "name"]);
        let namespace = str_at(obj, &["metadata", "namespace"]);
        let namespace_ok = matches_opt(&self.namespace, effective_namespace(api_version, kind, namespace));
        let name_ok = matches_opt(&self.name, name);
        if namespace_ok && name_ok {
            return true;
        }
        let Some(id) = original() else {
            return false;
        };
        let namespace_ok = namespace_ok || {
            let ns = id.namespace.as_deref().unwrap_or("");
            matches_opt(
                &self.namespace,
                effective_namespace(&id.gvk.api_version(), &id.gvk.kind, ns),
            )
        };
        namespace_ok && (name_ok || matches_opt(&self.name, &id.name))
    }
}

/// Labels or annotations as strings; scalars that are not strings read as YAML prints them.
pub(crate) fn string_map(value: &Value) -> BTreeMap<String, String> {
    let Value::Object(map) = value else {
        return BTreeMap::new();
    };
    map.iter()
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            (k.clone(), text)
        })
        .collect()
}

/// A parsed Kubernetes label selector (a port of apimachinery's `labels.Parse`, which kustomize
/// vendors). The empty selector matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Operator {
    Equals,
    DoubleEquals,
    NotEquals,
    In,
    NotIn,
    Exists,
    DoesNotExist,
    GreaterThan,
    LessThan,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Requirement {
    key: String,
    operator: Operator,
    /// Sorted and deduplicated.
    values: Vec<String>,
}

impl Requirement {
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        match self.operator {
            Operator::In | Operator::Equals | Operator::DoubleEquals => {
                value.is_some_and(|v| self.values.contains(v))
            }
            Operator::NotIn | Operator::NotEquals => value.is_none_or(|v| !self.values.contains(v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let (Some(Ok(actual)), Some(Ok(bound))) = (
                    value.map(|v| v.parse::<i64>()),
                    self.values.first().map(|v| v.parse::<i64>()),
                ) else {
                    return false;
                };
                if self.operator == Operator::GreaterThan {
                    actual > bound
                } else {
                    actual < bound
                }
            }
        }
    }
}

impl LabelSelector {
    /// Parses a selector such as `app=web,tier in (a,b),!legacy`.
    pub fn parse(selector: &str) -> Result<LabelSelector, String> {
        let tokens = lex(selector);
        let mut parser = Parser { tokens, position: 0 };
        let mut requirements = parser.parse()?;
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector { requirements })
    }

    fn parse_field(field: &'static str, selector: &str) -> Result<LabelSelector, SelectorError> {
        LabelSelector::parse(selector).map_err(|message| SelectorError::InvalidLabelSelector {
            field,
            selector: selector.to_string(),
            message,
        })
    }

    /// Whether every requirement holds for `labels`.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    /// [`LabelSelector::matches`] on an object's labels or annotations map (converted only when
    /// there is something to check).
    fn matches_map(&self, map: &Value) -> bool {
        self.requirements.is_empty() || self.matches(&string_map(map))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token {
    Error,
    EndOfString,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

fn keyword(s: &str) -> Option<Token> {
    Some(match s {
        ")" => Token::ClosedPar,
        "," => Token::Comma,
        "!" => Token::DoesNotExist,
        "==" => Token::DoubleEquals,
        "=" => Token::Equals,
        ">" => Token::GreaterThan,
        "in" => Token::In,
        "<" => Token::LessThan,
        "!=" => Token::NotEquals,
        "notin" => Token::NotIn,
        "(" => Token::OpenPar,
        _ => return None,
    })
}

fn is_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special(b: u8) -> bool {
    matches!(b, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

/// The apimachinery lexer: identifiers run until whitespace or a special symbol; symbols are the
/// longest known operator.
fn lex(s: &str) -> Vec<(Token, String)> {
    let bytes = s.as_bytes();
    let mut pos = 0;
    let mut out = Vec::new();
    loop {
        while pos < bytes.len() && is_whitespace(bytes[pos]) {
            pos += 1;
        }
        if pos >= bytes.len() {
            out.push((Token::EndOfString, String::new()));
            return out;
        }
        let start = pos;
        if is_special(bytes[pos]) {
            let mut last: Option<(Token, usize)> = None;
            while pos < bytes.len() && is_special(bytes[pos]) {
                pos += 1;
                match keyword(&s[start..pos]) {
                    Some(token) => last = Some((token, pos)),
                    None if last.is_some() => {
                        pos -= 1;
                        break;
                    }
                    None => {}
                }
            }
            match last {
                Some((token, end)) => {
                    pos = end;
                    out.push((token, s[start..end].to_string()));
                }
                None => out.push((
                    Token::Error,
                    format!("error expected: keyword found '{}'", &s[start..pos]),
                )),
            }
        } else {
            while pos < bytes.len() && !is_special(bytes[pos]) && !is_whitespace(bytes[pos]) {
                pos += 1;
            }
            let word = &s[start..pos];
            out.push((keyword(word).unwrap_or(Token::Identifier), word.to_string()));
        }
    }
}

struct Parser {
    tokens: Vec<(Token, String)>,
    position: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    KeyAndOperator,
    Values,
}

impl Parser {
    fn token(&self, index: usize, context: Context) -> (Token, String) {
        let (token, literal) = self
            .tokens
            .get(index)
            .cloned()
            .unwrap_or((Token::EndOfString, String::new()));
        // In values, `in` and `notin` are plain words.
        let token = match (context, token) {
            (Context::Values, Token::In | Token::NotIn) => Token::Identifier,
            _ => token,
        };
        (token, literal)
    }

    fn lookahead(&self, context: Context) -> (Token, String) {
        self.token(self.position, context)
    }

    fn consume(&mut self, context: Context) -> (Token, String) {
        self.position += 1;
        self.token(self.position - 1, context)
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, String> {
        let mut requirements = Vec::new();
        loop {
            let (token, literal) = self.lookahead(Context::Values);
            match token {
                Token::Identifier | Token::DoesNotExist => {
                    let requirement = self
                        .parse_requirement()
                        .map_err(|e| format!("unable to parse requirement: {e}"))?;
                    requirements.push(requirement);
                    let (token, literal) = self.consume(Context::Values);
                    match token {
                        Token::EndOfString => return Ok(requirements),
                        Token::Comma => {
                            let (next, literal) = self.lookahead(Context::Values);
                            if next != Token::Identifier && next != Token::DoesNotExist {
                                return Err(format!("found '{literal}', expected: identifier after ','"));
                            }
                        }
                        _ => return Err(format!("found '{literal}', expected: ',' or 'end of string'")),
                    }
                }
                Token::EndOfString => return Ok(requirements),
                _ => {
                    return Err(format!(
                        "found '{literal}', expected: !, identifier, or 'end of string'"
                    ));
                }
            }
        }
    }

    fn parse_requirement(&mut self) -> Result<Requirement, String> {
        let (key, operator) = self.parse_key_and_infer_operator()?;
        if let Some(op @ (Operator::Exists | Operator::DoesNotExist)) = operator {
            return new_requirement(key, op, Vec::new());
        }
        let operator = self.parse_operator()?;
        let values = match operator {
            Operator::In | Operator::NotIn => self.parse_values()?,
            _ => self.parse_exact_value()?,
        };
        new_requirement(key, operator, values)
    }

    fn parse_key_and_infer_operator(&mut self) -> Result<(String, Option<Operator>), String> {
        let mut operator = None;
        let (mut token, mut literal) = self.consume(Context::Values);
        if token == Token::DoesNotExist {
            operator = Some(Operator::DoesNotExist);
            (token, literal) = self.consume(Context::Values);
        }
        if token != Token::Identifier {
            return Err(format!("found '{literal}', expected: identifier"));
        }
        validate_label_key(&literal)?;
        let (next, _) = self.lookahead(Context::Values);
        if (next == Token::EndOfString || next == Token::Comma) && operator.is_none() {
            operator = Some(Operator::Exists);
        }
        Ok((literal, operator))
    }

    fn parse_operator(&mut self) -> Result<Operator, String> {
        let (token, literal) = self.consume(Context::KeyAndOperator);
        Ok(match token {
            Token::In => Operator::In,
            Token::Equals => Operator::Equals,
            Token::DoubleEquals => Operator::DoubleEquals,
            Token::GreaterThan => Operator::GreaterThan,
            Token::LessThan => Operator::LessThan,
            Token::NotIn => Operator::NotIn,
            Token::NotEquals => Operator::NotEquals,
            _ => {
                return Err(format!(
                    "found '{literal}', expected: '=', '!=', '==', 'in', notin'"
                ));
            }
        })
    }

    fn parse_values(&mut self) -> Result<Vec<String>, String> {
        let (token, literal) = self.consume(Context::Values);
        if token != Token::OpenPar {
            return Err(format!("found '{literal}' expected: '('"));
        }
        let (token, literal) = self.lookahead(Context::Values);
        match token {
            Token::Identifier | Token::Comma => {
                let values = self.parse_identifiers_list()?;
                let (token, _) = self.consume(Context::Values);
                if token != Token::ClosedPar {
                    return Err(format!("found '{literal}', expected: ')'"));
                }
                Ok(values)
            }
            Token::ClosedPar => {
                self.consume(Context::Values);
                Ok(vec![String::new()])
            }
            _ => Err(format!("found '{literal}', expected: ',', ')' or identifier")),
        }
    }

    fn parse_identifiers_list(&mut self) -> Result<Vec<String>, String> {
        let mut values: Vec<String> = Vec::new();
        let insert = |values: &mut Vec<String>, v: String| {
            if !values.contains(&v) {
                values.push(v);
            }
        };
        loop {
            let (token, literal) = self.consume(Context::Values);
            match token {
                Token::Identifier => {
                    insert(&mut values, literal);
                    let (next, literal) = self.lookahead(Context::Values);
                    match next {
                        Token::Comma => continue,
                        Token::ClosedPar => return Ok(values),
                        _ => return Err(format!("found '{literal}', expected: ',' or ')'")),
                    }
                }
                // `(,` `,,` and `,)` stand for empty values.
                Token::Comma => {
                    if values.is_empty() {
                        insert(&mut values, String::new());
                    }
                    let (next, _) = self.lookahead(Context::Values);
                    if next == Token::ClosedPar {
                        insert(&mut values, String::new());
                        return Ok(values);
                    }
                    if next == Token::Comma {
                        self.consume(Context::Values);
                        insert(&mut values, String::new());
                    }
                }
                _ => return Err(format!("found '{literal}', expected: ',', or identifier")),
            }
        }
    }

    fn parse_exact_value(&mut self) -> Result<Vec<String>, String> {
        let (token, _) = self.lookahead(Context::Values);
        if token == Token::EndOfString || token == Token::Comma {
            return Ok(vec![String::new()]);
        }
        let (token, literal) = self.consume(Context::Values);
        if token == Token::Identifier {
            Ok(vec![literal])
        } else {
            Err(format!("found '{literal}', expected: identifier"))
        }
    }
}

fn new_requirement(key: String, operator: Operator, mut values: Vec<String>) -> Result<Requirement, String> {
    validate_label_key(&key)?;
    values.sort();
    values.dedup();
    match operator {
        Operator::In | Operator::NotIn if values.is_empty() => {
            return Err("for 'in', 'notin' operators, values set can't be empty".into());
        }
        Operator::Equals | Operator::DoubleEquals | Operator::NotEquals if values.len() != 1 => {
            return Err("exact-match compatibility requires one single value".into());
        }
        Operator::GreaterThan | Operator::LessThan => {
            if values.len() != 1 {
                return Err("for 'Gt', 'Lt' operators, exactly one value is required".into());
            }
            if values[0].parse::<i64>().is_err() {
                return Err("for 'Gt', 'Lt' operators, the value must be an integer".into());
            }
        }
        _ => {}
    }
    for value in &values {
        if let Some(problem) = label_value_problem(value) {
            return Err(format!(
                "invalid label value: \"{value}\": at key: \"{key}\": {problem}"
            ));
        }
    }
    Ok(Requirement {
        key,
        operator,
        values,
    })
}

/// `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`: a label name or value.
fn is_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    let edge = |c: &u8| c.is_ascii_alphanumeric();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            edge(first)
                && edge(last)
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// DNS-1123 subdomain: lowercase alphanumerics, `-` and `.`, each label starting and ending
/// alphanumeric, at most 253 characters.
fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|label| {
            let b = label.as_bytes();
            let edge = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
            match (b.first(), b.last()) {
                (Some(first), Some(last)) => {
                    edge(first) && edge(last) && b.iter().all(|c| edge(c) || *c == b'-')
                }
                _ => false,
            }
        })
}

const NAME_RULE: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an \
                         alphanumeric character";

/// apimachinery `IsQualifiedName`: `[prefix/]name`.
fn validate_label_key(key: &str) -> Result<(), String> {
    let mut problems = Vec::new();
    let name = match key.split('/').collect::<Vec<_>>()[..] {
        [name] => name,
        [prefix, name] => {
            if prefix.is_empty() {
                problems.push("prefix part must be non-empty".to_string());
            } else if !is_dns1123_subdomain(prefix) {
                problems.push(
                    "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric \
                     characters, '-' or '.', and must start and end with an alphanumeric character"
                        .to_string(),
                );
            }
            name
        }
        _ => {
            return Err(format!(
                "invalid label key \"{key}\": a qualified name {NAME_RULE} with an optional DNS subdomain prefix \
                 and '/' (e.g. 'example.com/MyName')"
            ));
        }
    };
    if name.is_empty() {
        problems.push("name part must be non-empty".into());
    } else if name.len() > 63 {
        problems.push("name part must be no more than 63 characters".into());
    }
    if !is_qualified_name_part(name) {
        problems.push(format!("name part {NAME_RULE}"));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("invalid label key \"{key}\": {}", problems.join("; ")))
    }
}

/// apimachinery `IsValidLabelValue`: empty, or a qualified name part of at most 63 characters.
fn label_value_problem(value: &str) -> Option<String> {
    if value.is_empty() {
        return None;
    }
    let mut problems = Vec::new();
    if value.len() > 63 {
        problems.push("must be no more than 63 characters".to_string());
    }
    if !is_qualified_name_part(value) {
        problems.push(format!("a valid label must be an empty string or {NAME_RULE}"));
    }
    (!problems.is_empty()).then(|| problems.join("; "))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::manifest::Gvk;
    use crate::render::patches::json6902;
    use crate::render::patches::kubectl_cases::{check_all, same_objects};

    /// `testdata/selector/*`: JSON patches with targets; which objects each target selects is
    /// what `kubectl kustomize` printed.
    #[test]
    fn kubectl_cases() {
        check_all("selector", |case| {
            let mut objects = case.documents("resources.yaml");
            let Value::Array(entries) = &case.kustomization["patches"] else {
                return Err("no patches".into());
            };
            for entry in entries {
                let target: Selector =
                    serde_json::from_value(entry["target"].clone()).map_err(|e| e.to_string())?;
                let target = target.compile().map_err(|e| e.to_string())?;
                let ops: Value =
                    serde_json::from_str(entry["patch"].as_str().unwrap_or("")).map_err(|e| e.to_string())?;
                for obj in objects.iter_mut().filter(|o| target.matches(o)) {
                    json6902::apply(obj, &ops).map_err(|e| e.to_string())?;
                }
            }
            same_objects(&objects, &case.documents("expected.yaml"))
        });
    }

    fn selector(yaml_like: Value) -> Selector {
        serde_json::from_value(yaml_like).unwrap()
    }

    fn obj(api_version: &str, kind: &str, name: &str, namespace: Option<&str>) -> Value {
        let mut meta = json!({"name": name, "labels": {"app": "web", "tier": "front"},
            "annotations": {"team": "kafka", "config.kubernetes.io/local-config": "true"}});
        if let Some(ns) = namespace {
            meta["namespace"] = json!(ns);
        }
        json!({"apiVersion": api_version, "kind": kind, "metadata": meta})
    }

    #[test]
    fn reads_camel_case_and_refuses_unknown_fields() {
        let s = selector(json!({"group": "apps", "kind": "Deployment", "name": "web-.*",
            "labelSelector": "app=web", "annotationSelector": "team", "namespace": null}));
        assert_eq!(s.group, "apps");
        assert_eq!(s.label_selector, "app=web");
        assert_eq!(s.namespace, "");
        assert_eq!(
            s.to_string(),
            "group=apps, kind=Deployment, name=web-.*, labelSelector=app=web, annotationSelector=team"
        );
        assert_eq!(Selector::default().to_string(), "any object");
        let err = serde_json::from_value::<Selector>(json!({"kinds": "Deployment"})).unwrap_err();
        assert!(err.to_string().contains("unknown field `kinds`"), "{err}");
    }

    /// As in `kubectl kustomize`: `name: web` selects `web` only, `web.*` both.
    #[test]
    fn name_and_namespace_regexes_are_anchored() {
        let web = obj("apps/v1", "Deployment", "web", Some("prod"));
        let web2 = obj("apps/v1", "Deployment", "web-2", Some("prod"));
        let exact = selector(json!({"name": "web"}));
        assert!(exact.matches(&web).unwrap());
        assert!(!exact.matches(&web2).unwrap());
        assert!(!selector(json!({"name": "eb"})).matches(&web).unwrap());
        let pattern = selector(json!({"name": "web.*"}));
        assert!(pattern.matches(&web).unwrap() && pattern.matches(&web2).unwrap());
        let alternatives = selector(json!({"name": "web|db"}));
        assert!(alternatives.matches(&web).unwrap() && !alternatives.matches(&web2).unwrap());
        assert!(selector(json!({"namespace": "pro."})).matches(&web).unwrap());
        assert!(!selector(json!({"namespace": "pro"})).matches(&web).unwrap());
    }

    #[test]
    fn gvk_fields_are_anchored_regexes_too() {
        let dep = obj("apps/v1", "Deployment", "web", None);
        assert!(
            selector(json!({"group": "apps", "version": "v1", "kind": "Deployment"}))
                .matches(&dep)
                .unwrap()
        );
        assert!(selector(json!({"kind": "Deploy.*"})).matches(&dep).unwrap());
        assert!(!selector(json!({"kind": "Deploy"})).matches(&dep).unwrap());
        assert!(!selector(json!({"group": "app"})).matches(&dep).unwrap());
        // The core group is empty: `group: ""` means any group, `version: v1` matches both.
        let cm = obj("v1", "ConfigMap", "c", None);
        assert!(selector(json!({"version": "v1"})).matches(&cm).unwrap());
        assert!(selector(json!({"version": "v1"})).matches(&dep).unwrap());
        assert!(!selector(json!({"group": "apps"})).matches(&cm).unwrap());
    }

    #[test]
    fn namespace_is_effective_namespace() {
        let no_ns = obj("v1", "ConfigMap", "c", None);
        assert!(selector(json!({"namespace": "default"})).matches(&no_ns).unwrap());
        assert!(!selector(json!({"namespace": "prod"})).matches(&no_ns).unwrap());
        // Which kinds have no namespace is kustomize's own (Kubernetes 1.21) table: later kinds
        // count as namespaced, as in kustomize (tests/render/selector-scope).
        let vap = obj(
            "admissionregistration.k8s.io/v1",
            "ValidatingAdmissionPolicy",
            "p",
            None,
        );
        assert!(selector(json!({"namespace": "default"})).matches(&vap).unwrap());
        let namespace = obj("v1", "Namespace", "prod", None);
        assert!(
            !selector(json!({"namespace": "default"}))
                .matches(&namespace)
                .unwrap()
        );
        // Like kustomize: the placeholder namespace of a cluster-scoped object still matches `.*`.
        assert!(selector(json!({"namespace": ".*"})).matches(&namespace).unwrap());
        assert!(
            selector(json!({"kind": "Namespace"}))
                .matches(&namespace)
                .unwrap()
        );
    }

    #[test]
    fn original_identity_also_selects() {
        let renamed = obj("apps/v1", "Deployment", "dev-web", Some("kafka-dev"));
        let original = ResId {
            gvk: Gvk::from_api_version("apps/v1", "Deployment"),
            namespace: None,
            name: "web".into(),
        };
        let s = selector(json!({"name": "web", "namespace": "default"}))
            .compile()
            .unwrap();
        assert!(!s.matches(&renamed));
        assert!(s.matches_with_original(&renamed, || original.clone()));
    }

    #[test]
    fn label_selector_forms() {
        let dep = obj("apps/v1", "Deployment", "web", None);
        let cases = [
            ("", true),
            ("app=web", true),
            ("app==web", true),
            ("app = web", true),
            ("app!=web", false),
            ("app!=db", true),
            ("missing!=x", true),
            ("app in (web,db)", true),
            ("app in (db)", false),
            ("app notin (db, cache)", true),
            ("app notin (web)", false),
            ("missing notin (web)", true),
            ("app", true),
            ("!app", false),
            ("!missing", true),
            ("app=web,tier=front", true),
            ("app=web,tier=back", false),
            ("app=web, !missing, tier in (front)", true),
            ("in=x", false),
            ("tier in (in, notin, front)", true),
        ];
        for (expr, expected) in cases {
            let s = Selector {
                label_selector: expr.into(),
                ..Selector::default()
            };
            assert_eq!(s.matches(&dep).unwrap(), expected, "labelSelector {expr:?}");
        }
        let mut numbered = dep.clone();
        numbered["metadata"]["labels"]["replicas"] = json!("3");
        let parsed = |s: &str| LabelSelector::parse(s).unwrap();
        let labels = string_map(&numbered["metadata"]["labels"]);
        assert!(parsed("replicas>2").matches(&labels));
        assert!(!parsed("replicas<3").matches(&labels));
        assert!(!parsed("app>1").matches(&labels));
    }

    #[test]
    fn annotation_selector_uses_the_same_syntax() {
        let dep = obj("apps/v1", "Deployment", "web", None);
        let s = |a: &str| Selector {
            annotation_selector: a.into(),
            ..Selector::default()
        };
        assert!(s("team=kafka").matches(&dep).unwrap());
        assert!(s("config.kubernetes.io/local-config=true").matches(&dep).unwrap());
        assert!(!s("team in (zk)").matches(&dep).unwrap());
        assert!(!s("!team").matches(&dep).unwrap());
    }

    #[test]
    fn empty_values_in_sets() {
        let labels = BTreeMap::from([("a".to_string(), String::new())]);
        assert!(LabelSelector::parse("a in ()").unwrap().matches(&labels));
        assert!(LabelSelector::parse("a in (,x)").unwrap().matches(&labels));
        assert!(LabelSelector::parse("a in (x,)").unwrap().matches(&labels));
        assert!(LabelSelector::parse("a=").unwrap().matches(&labels));
        assert!(!LabelSelector::parse("a in (x)").unwrap().matches(&labels));
    }

    #[test]
    fn bad_selectors_are_errors_naming_the_field() {
        let cases = [
            ("app=", None),
            (
                "app in web",
                Some("unable to parse requirement: found 'web' expected: '('"),
            ),
            (
                "app in (web",
                Some("unable to parse requirement: found '', expected: ',' or ')'"),
            ),
            ("app=web,", Some("found '', expected: identifier after ','")),
            (
                "app=web tier=x",
                Some("found 'tier', expected: ',' or 'end of string'"),
            ),
            (
                "=web",
                Some("found '=', expected: !, identifier, or 'end of string'"),
            ),
            ("!app=web", Some("found '=', expected: ',' or 'end of string'")),
            (
                "app>x",
                Some("unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer"),
            ),
            (
                "-app=x",
                Some("name part must consist of alphanumeric characters"),
            ),
            ("a/b/c=x", Some("with an optional DNS subdomain prefix")),
            (
                "Example.com/app=x",
                Some("prefix part a lowercase RFC 1123 subdomain"),
            ),
            ("app=-web", Some("invalid label value: \"-web\": at key: \"app\"")),
            ("app=a b", Some("found 'b', expected: ',' or 'end of string'")),
            ("app=<>", Some("found '<', expected: identifier")),
        ];
        for (expr, problem) in cases {
            let result = LabelSelector::parse(expr);
            match problem {
                None => assert!(result.is_ok(), "{expr}: {result:?}"),
                Some(problem) => {
                    let message = result.unwrap_err();
                    assert!(message.contains(problem), "{expr}: {message}");
                }
            }
        }
        let long = format!("app={}", "x".repeat(64));
        assert!(
            LabelSelector::parse(&long)
                .unwrap_err()
                .contains("must be no more than 63 characters")
        );

        let s = Selector {
            label_selector: "app in web".into(),
            ..Selector::default()
        };
        let err = s.compile().unwrap_err();
        assert_eq!(
            err.to_string(),
            "labelSelector `app in web` is invalid: unable to parse requirement: found 'web' expected: '('"
        );
        let s = Selector {
            name: "web-(".into(),
            ..Selector::default()
        };
        let err = s.matches(&json!({})).unwrap_err();
        assert!(
            matches!(err, SelectorError::InvalidRegex { field: "name", .. }),
            "{err}"
        );
        assert!(
            err.to_string()
                .starts_with("selector name `web-(` is not a valid regular expression")
        );
    }
}
