//! The Kubernetes semver library (`semverlib.go`, version 1 from Kubernetes 1.33):
//! `semver(string)`, `semver(string, normalize)`, `isSemver(string)`, `isSemver(string, normalize)`,
//! and on a version `major()`, `minor()`, `patch()`, `isGreaterThan(v)`, `isLessThan(v)`,
//! `compareTo(v)`. Parsing is blang/semver v4's strict `Parse`; `normalize` strips a `v`, leading
//! zeros, and fills a missing minor/patch, as the apiserver's `normalizeAndParse`.

use std::cmp::Ordering;

use cel::common::types::{CelBool, CelInt, CelString, Type};
use cel::{DeclarationError, Env, ExecutionError};

use super::{error, opaque_val};

static SEMVER_TYPE: Type = Type::new_unspecified_type("kubernetes.Semver");

/// A pre-release identifier: numeric ones order below alphanumeric ones.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Pre {
    Num(u64),
    Alpha(String),
}

/// A semantic version (build metadata is parsed and ignored, as in comparisons).
#[derive(Clone, Debug)]
pub(super) struct Semver {
    major: u64,
    minor: u64,
    patch: u64,
    pre: Vec<Pre>,
}

opaque_val!(Semver, &SEMVER_TYPE, |a, b| a.compare(b) == Ordering::Equal);

pub(super) fn register(env: &mut Env) -> Result<(), DeclarationError> {
    cel::add_overload!(env, fn semver: (CelString) -> Result<Semver>, name = "semver", id = "string_to_semver")?;
    cel::add_overload!(env, fn semver_normalize: (CelString, CelBool) -> Result<Semver>, name = "semver", id = "string_bool_to_semver")?;
    cel::add_overload!(env, fn is_semver: (CelString) -> CelBool, name = "isSemver", id = "is_semver_string")?;
    cel::add_overload!(env, fn is_semver_normalize: (CelString, CelBool) -> CelBool, name = "isSemver", id = "is_semver_string_bool")?;
    cel::add_member_overload!(env, fn greater: (Semver, Semver) -> CelBool, name = "isGreaterThan", id = "semver_is_greater_than")?;
    cel::add_member_overload!(env, fn less: (Semver, Semver) -> CelBool, name = "isLessThan", id = "semver_is_less_than")?;
    cel::add_member_overload!(env, fn compare_to: (Semver, Semver) -> CelInt, name = "compareTo", id = "semver_compare_to")?;
    cel::add_member_overload!(env, fn major: (Semver) -> CelInt, name = "major", id = "semver_major")?;
    cel::add_member_overload!(env, fn minor: (Semver) -> CelInt, name = "minor", id = "semver_minor")?;
    cel::add_member_overload!(env, fn patch: (Semver) -> CelInt, name = "patch", id = "semver_patch")?;
    Ok(())
}

/// blang/semver's numeric part: digits only, no leading zero, fits a uint64.
fn number(s: &str, what: &str) -> Result<u64, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("Invalid character(s) found in {what} number {s:?}"));
    }
    if s.len() > 1 && s.starts_with('0') {
        return Err(format!("{what} number must not contain leading zeroes {s:?}"));
    }
    s.parse().map_err(|e| format!("{what}: {e}"))
}

fn alphanumeric(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// blang/semver v4 `Parse`.
fn parse(s: &str) -> Result<Semver, String> {
    if s.is_empty() {
        return Err("Version string empty".into());
    }
    let parts: Vec<&str> = s.splitn(3, '.').collect();
    let [major, minor, rest] = parts[..] else {
        return Err("No Major.Minor.Patch elements found".into());
    };
    let major = number(major, "Major")?;
    let minor = number(minor, "Minor")?;
    let (rest, build) = match rest.split_once('+') {
        Some((r, b)) => (r, Some(b)),
        None => (rest, None),
    };
    let (patch, pre) = match rest.split_once('-') {
        Some((p, pre)) => (p, Some(pre)),
        None => (rest, None),
    };
    let patch = number(patch, "Patch")?;
    let mut pres = Vec::new();
    for p in pre.map(|p| p.split('.').collect::<Vec<_>>()).unwrap_or_default() {
        if p.is_empty() {
            return Err("Prerelease is empty".into());
        }
        if p.bytes().all(|b| b.is_ascii_digit()) {
            pres.push(Pre::Num(number(p, "Prerelease")?));
        } else if alphanumeric(p) {
            pres.push(Pre::Alpha(p.to_string()));
        } else {
            return Err(format!("Invalid character(s) found in prerelease {p:?}"));
        }
    }
    for b in build
        .map(|b| b.split('.').collect::<Vec<_>>())
        .unwrap_or_default()
    {
        if b.is_empty() || !alphanumeric(b) {
            return Err(format!("Invalid character(s) found in build meta data {b:?}"));
        }
    }
    Ok(Semver {
        major,
        minor,
        patch,
        pre: pres,
    })
}

/// The apiserver's `normalizeAndParse`.
fn normalize_and_parse(s: &str) -> Result<Semver, String> {
    let s = s.strip_prefix('v').unwrap_or(s);
    let mut parts: Vec<String> = s
        .splitn(3, '.')
        .map(|p| {
            if p.len() > 1 {
                let trimmed = p.trim_start_matches('0');
                if trimmed.is_empty() || !trimmed.starts_with(|c: char| c.is_ascii_digit()) {
                    return format!("0{trimmed}");
                }
                return trimmed.to_string();
            }
            p.to_string()
        })
        .collect();
    if parts.len() < 3 {
        if parts.last().is_some_and(|p| p.contains(['+', '-'])) {
            return Err("short version cannot contain PreRelease/Build meta data".into());
        }
        parts.resize(3, "0".into());
    }
    parse(&parts.join("."))
}

impl Semver {
    /// blang/semver's `Compare`.
    fn compare(&self, other: &Semver) -> Ordering {
        let core = (self.major, self.minor, self.patch).cmp(&(other.major, other.minor, other.patch));
        if core != Ordering::Equal {
            return core;
        }
        match (self.pre.is_empty(), other.pre.is_empty()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Greater,
            (false, true) => return Ordering::Less,
            _ => {}
        }
        for (a, b) in self.pre.iter().zip(&other.pre) {
            let o = match (a, b) {
                (Pre::Num(x), Pre::Num(y)) => x.cmp(y),
                (Pre::Num(_), Pre::Alpha(_)) => Ordering::Less,
                (Pre::Alpha(_), Pre::Num(_)) => Ordering::Greater,
                (Pre::Alpha(x), Pre::Alpha(y)) => x.cmp(y),
            };
            if o != Ordering::Equal {
                return o;
            }
        }
        self.pre.len().cmp(&other.pre.len())
    }
}

fn semver(s: &CelString<'_>) -> Result<Semver, ExecutionError> {
    parse(s.inner()).map_err(|e| error("semver", e))
}

fn semver_normalize(s: &CelString<'_>, normalize: &CelBool) -> Result<Semver, ExecutionError> {
    let parsed = if *normalize.inner() {
        normalize_and_parse(s.inner())
    } else {
        parse(s.inner())
    };
    parsed.map_err(|e| error("semver", e))
}

fn is_semver(s: &CelString<'_>) -> CelBool {
    parse(s.inner()).is_ok().into()
}

fn is_semver_normalize(s: &CelString<'_>, normalize: &CelBool) -> CelBool {
    let parsed = if *normalize.inner() {
        normalize_and_parse(s.inner())
    } else {
        parse(s.inner())
    };
    parsed.is_ok().into()
}

fn greater(a: &Semver, b: &Semver) -> CelBool {
    (a.compare(b) == Ordering::Greater).into()
}

fn less(a: &Semver, b: &Semver) -> CelBool {
    (a.compare(b) == Ordering::Less).into()
}

fn compare_to(a: &Semver, b: &Semver) -> CelInt {
    (a.compare(b) as i64).into()
}

/// Go converts the uint64 parts with `types.Int(v)`, wrapping above 2^63-1.
fn major(v: &Semver) -> CelInt {
    (v.major as i64).into()
}

fn minor(v: &Semver) -> CelInt {
    (v.minor as i64).into()
}

fn patch(v: &Semver) -> CelInt {
    (v.patch as i64).into()
}

#[cfg(test)]
mod tests {
    use super::super::tests::{all_fail, all_true};

    #[test]
    fn versions_as_the_apiserver_evaluates_them() {
        all_true(&[
            "isSemver('1.2.3') && isSemver('1.2.3-rc.1+build.5') && !isSemver('v1.2.3') && !isSemver('1.2')",
            "!isSemver('01.2.3') && !isSemver('1.2.3-01') && !isSemver('1.2.3-') && isSemver('1.2.3-0a')",
            "isSemver('v1.2', true) && isSemver('01.02.03', true) && !isSemver('1.2-rc', true)",
            "semver('v1', true) == semver('1.0.0')",
            "semver('1.2.3').major() == 1 && semver('1.2.3').minor() == 2 && semver('1.2.3').patch() == 3",
            "semver('1.10.0').isGreaterThan(semver('1.9.9')) && semver('1.0.0-rc.1').isLessThan(semver('1.0.0'))",
            "semver('1.0.0-alpha').compareTo(semver('1.0.0-alpha.1')) == -1",
            "semver('1.0.0-2').isLessThan(semver('1.0.0-10')) && semver('1.0.0-a').isGreaterThan(semver('1.0.0-1'))",
            "semver('1.0.0+a') == semver('1.0.0+b')",
        ]);
        all_fail(&[("semver('1.2')", "No Major.Minor.Patch")]);
    }
}
