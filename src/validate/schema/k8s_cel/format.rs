//! The Kubernetes format library (`format.go`, from 1.31): `format.named(string)` (an optional
//! format), `format.dns1123Label()` and the other named formats, and `<format>.validate(string)`:
//! `optional.none()` when the string is valid, else the list of apimachinery's error messages.
//!
//! All formats but `datetime` (go-openapi's date-time grammar, not ported): a rule using
//! `format.datetime()` is reported as "cannot check offline" by validations.rs, and so is a rule
//! reaching `format.named('datetime')` (an undeclared reference here, not a refusal).

use std::sync::OnceLock;

use cel::common::types::{CelList, CelOptional, CelString, Type};
use cel::common::value::Val;
use cel::{DeclarationError, Env, ExecutionError};

use super::opaque_val;

static FORMAT_TYPE: Type = Type::new_unspecified_type("kubernetes.NamedFormat");

/// A named format as a CEL value.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Format(&'static str);

opaque_val!(Format, &FORMAT_TYPE, |a, b| a == b);

/// The formats of `ConstantFormats` that kgitops implements.
const NAMES: &[&str] = &[
    "dns1123Label",
    "dns1123Subdomain",
    "dns1035Label",
    "qualifiedName",
    "dns1123LabelPrefix",
    "dns1123SubdomainPrefix",
    "dns1035LabelPrefix",
    "labelValue",
    "uri",
    "uuid",
    "byte",
    "date",
];

pub(super) fn register(env: &mut Env) -> Result<(), DeclarationError> {
    cel::add_overload!(env, fn named: (CelString) -> Result<CelOptional>, name = "format.named", id = "format-named")?;
    cel::add_member_overload!(env, fn validate: (Format, CelString) -> Result<CelOptional>, name = "validate", id = "format-validate")?;
    macro_rules! constant {
        ($($f:ident => $name:literal),* $(,)?) => {$(
            fn $f() -> Format {
                Format($name)
            }
            cel::add_overload!(env, fn $f: () -> Format, name = concat!("format.", $name), id = concat!("format-", $name))?;
        )*};
    }
    constant!(
        dns1123_label => "dns1123Label",
        dns1123_subdomain => "dns1123Subdomain",
        dns1035_label => "dns1035Label",
        qualified_name => "qualifiedName",
        dns1123_label_prefix => "dns1123LabelPrefix",
        dns1123_subdomain_prefix => "dns1123SubdomainPrefix",
        dns1035_label_prefix => "dns1035LabelPrefix",
        label_value => "labelValue",
        uri => "uri",
        uuid => "uuid",
        byte => "byte",
        date => "date",
    );
    Ok(())
}

fn named(name: &CelString<'_>) -> Result<CelOptional<'static>, ExecutionError> {
    if name.inner() == "datetime" {
        // Not a refusal: an undeclared reference, which validations.rs reports as "cannot check
        // offline".
        return Err(ExecutionError::undeclared_reference("format.datetime"));
    }
    Ok(match NAMES.iter().find(|n| **n == name.inner()) {
        Some(n) => CelOptional::of(Box::new(Format(n))),
        None => CelOptional::none(),
    })
}

fn validate(format: &Format, s: &CelString<'_>) -> Result<CelOptional<'static>, ExecutionError> {
    let errors = errors(format.0, s.inner());
    if errors.is_empty() {
        return Ok(CelOptional::none());
    }
    let list: Vec<Box<dyn Val>> = errors
        .into_iter()
        .map(|e| Box::new(CelString::from(e)) as Box<dyn Val>)
        .collect();
    Ok(CelOptional::of(Box::new(CelList::from(list))))
}

fn regex(
    pattern: &'static str,
    cell: &'static OnceLock<Option<regex::Regex>>,
) -> Option<&'static regex::Regex> {
    cell.get_or_init(|| regex::Regex::new(pattern).ok()).as_ref()
}

/// Whether `s` matches the anchored pattern; a pattern that does not compile matches nothing.
macro_rules! matches_re {
    ($pattern:expr, $s:expr) => {{
        static CELL: OnceLock<Option<regex::Regex>> = OnceLock::new();
        regex($pattern, &CELL).is_some_and(|r| r.is_match($s))
    }};
}

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_ERR: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERR: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const DNS1035_LABEL_FMT: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";
const DNS1035_LABEL_ERR: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character";
const LABEL_KEY_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const LABEL_KEY_ERR: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_ERR: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";

/// apimachinery's `MaxLenError`.
fn max_len(n: usize) -> String {
    format!("must be no more than {n} characters")
}

/// apimachinery's `RegexError`.
fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    let mut out = format!("{msg} (e.g. ");
    for (i, e) in examples.iter().enumerate() {
        if i > 0 {
            out.push_str(" or ");
        }
        out.push_str(&format!("'{e}', "));
    }
    out.push_str(&format!("regex used for validation is '{fmt}')"));
    out
}

fn is_dns1123_subdomain(s: &str) -> bool {
    matches_re!(
        "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
        s
    )
}

fn dns1123_label(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 63 {
        errs.push(max_len(63));
    }
    if !matches_re!("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", s) {
        if is_dns1123_subdomain(s) {
            errs.push("must not contain dots".to_string());
        } else {
            errs.push(regex_error(
                DNS1123_LABEL_ERR,
                DNS1123_LABEL_FMT,
                &["my-name", "123-abc"],
            ));
        }
    }
    errs
}

fn dns1123_subdomain(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 253 {
        errs.push(max_len(253));
    }
    if !is_dns1123_subdomain(s) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_ERR,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

fn dns1035_label(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 63 {
        errs.push(max_len(63));
    }
    if !matches_re!("^[a-z]([-a-z0-9]*[a-z0-9])?$", s) {
        errs.push(regex_error(
            DNS1035_LABEL_ERR,
            DNS1035_LABEL_FMT,
            &["my-name", "abc-123"],
        ));
    }
    errs
}

/// apimachinery's `maskTrailingDash`, for the `*Prefix` formats (generateName prefixes).
fn mask_trailing_dash(s: &str) -> String {
    if s.len() > 1 && s.ends_with('-') {
        // Go slices bytes: name[:len-2] + "a".
        let cut = s.len() - 2;
        match s.get(..cut) {
            Some(head) => format!("{head}a"),
            None => s.to_string(),
        }
    } else {
        s.to_string()
    }
}

/// apimachinery's `IsQualifiedName` (`IsLabelKey`).
fn qualified_name(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = s.split('/').collect();
    let name = match parts[..] {
        [name] => name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else {
                errs.extend(
                    dns1123_subdomain(prefix)
                        .into_iter()
                        .map(|m| format!("prefix part {m}")),
                );
            }
            name
        }
        _ => {
            errs.push(format!(
                "a valid label key {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(LABEL_KEY_ERR, LABEL_KEY_FMT, &["MyName", "my.name", "123-abc"])
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > 63 {
        errs.push(format!("name part {}", max_len(63)));
    }
    if !matches_re!("^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$", name) {
        errs.push(format!(
            "name part {}",
            regex_error(LABEL_KEY_ERR, LABEL_KEY_FMT, &["MyName", "my.name", "123-abc"])
        ));
    }
    errs
}

fn label_value(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 63 {
        errs.push(max_len(63));
    }
    if !matches_re!("^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$", s) {
        errs.push(regex_error(
            LABEL_VALUE_ERR,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// Go's `time.Parse("2006-01-02", s)`: four-digit year, a real month and day.
fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let num = |r: std::ops::Range<usize>| {
        s.get(r)
            .filter(|d| d.bytes().all(|c| c.is_ascii_digit()))
            .and_then(|d| d.parse::<u32>().ok())
    };
    let (Some(y), Some(m), Some(d)) = (num(0..4), num(5..7), num(8..10)) else {
        return false;
    };
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&d)
}

/// The error messages of a format for `s` (empty: valid).
fn errors(format: &str, s: &str) -> Vec<String> {
    match format {
        "dns1123Label" => dns1123_label(s),
        "dns1123Subdomain" => dns1123_subdomain(s),
        "dns1035Label" => dns1035_label(s),
        "qualifiedName" => qualified_name(s),
        "dns1123LabelPrefix" => dns1123_label(&mask_trailing_dash(s)),
        "dns1123SubdomainPrefix" => dns1123_subdomain(&mask_trailing_dash(s)),
        "dns1035LabelPrefix" => dns1035_label(&mask_trailing_dash(s)),
        "labelValue" => label_value(s),
        "uri" => match super::url::parse_request_uri(s) {
            Ok(()) => vec![],
            Err(e) => vec![format!("parse {s:?}: {e}")],
        },
        "uuid" => {
            if matches_re!(
                "(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$",
                s
            ) {
                vec![]
            } else {
                vec!["does not match the UUID format".to_string()]
            }
        }
        "byte" => {
            if matches_re!(
                "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{4})$",
                s
            ) {
                vec![]
            } else {
                vec!["invalid base64".to_string()]
            }
        }
        "date" => {
            if is_date(s) {
                vec![]
            } else {
                vec!["invalid date".to_string()]
            }
        }
        other => vec![format!("unknown format {other}")],
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{all_fail, all_true};

    #[test]
    fn formats_as_the_apiserver_evaluates_them() {
        all_true(&[
            "!format.dns1123Label().validate('my-name').hasValue()",
            "format.dns1123Label().validate('a.b').value() == ['must not contain dots']",
            "format.dns1123Label().validate('My').hasValue() && format.dns1035Label().validate('1a').hasValue()",
            "!format.dns1123Subdomain().validate('a.example.com').hasValue()",
            "!format.dns1123LabelPrefix().validate('my-').hasValue() && format.dns1123Label().validate('my-').hasValue()",
            "!format.qualifiedName().validate('example.com/My_Name').hasValue()",
            "format.qualifiedName().validate('a/b/c').hasValue() && format.qualifiedName().validate('/x').hasValue()",
            "!format.labelValue().validate('').hasValue() && format.labelValue().validate('-x').hasValue()",
            "!format.uri().validate('https://x/y').hasValue() && format.uri().validate('x').hasValue()",
            "!format.uuid().validate('123e4567-e89b-12d3-a456-426614174000').hasValue()",
            "format.uuid().validate('not-a-uuid').hasValue()",
            "!format.byte().validate('aGk=').hasValue() && format.byte().validate('aGk').hasValue()",
            "!format.date().validate('2024-02-29').hasValue() && format.date().validate('2023-02-29').hasValue()",
            "format.named('dns1123Label').hasValue() && !format.named('nope').hasValue()",
            "!format.named('labelValue').value().validate('ok').hasValue()",
        ]);
        all_fail(&[("format.named('datetime')", "format.datetime")]);
    }
}
