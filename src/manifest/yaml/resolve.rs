//! What a plain YAML scalar means to the two go-yaml versions inside `kubectl kustomize`.
//!
//! kustomize reads manifests with go-yaml v3 (kyaml): a plain scalar is resolved by
//! [`resolve_plain`] (YAML 1.2-ish booleans, but YAML 1.1 octals `0755`, timestamps, and so on).
//! It prints them through go-yaml v2, whose YAML 1.1 resolver decides whether a string must be
//! quoted: [`plain_is_string_v2`]. Both are ports of the `resolve` functions in go-yaml's
//! `resolve.go`, including their use of Go's `strconv` and `time.Parse`, because the exact corner
//! cases (`0b-1`, `1_000`, `2001-1-2`, `+.5`) decide the bytes kustomize prints.

/// The value of a resolved scalar, before it becomes JSON.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Resolved {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    /// `.inf`, `-.inf` and `.nan`: go-yaml accepts them, JSON (and therefore kustomize) cannot.
    NonFinite,
    /// A timestamp, already formatted as Go's `time.Time` JSON form (RFC 3339 with nanoseconds).
    Timestamp(String),
    /// A timestamp whose zone offset Go refuses to print as RFC 3339 (24 hours or more).
    BadTimestamp,
    Str,
}

/// The YAML core tags that go-yaml resolves (`!!bool`, `!!int`, ...); anything else is a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CoreTag {
    Bool,
    Int,
    Float,
    Null,
    Timestamp,
}

/// Which go-yaml's table of special words applies.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Version {
    /// go-yaml v2 (YAML 1.1 booleans `yes`/`no`/`on`/`off`/`y`/`n`).
    V2,
    /// go-yaml v3 (only `true`/`false` spellings are booleans; also `0o17` octals).
    V3,
}

fn lookup_word(s: &str, version: Version) -> Option<Resolved> {
    Some(match s {
        "true" | "True" | "TRUE" => Resolved::Bool(true),
        "false" | "False" | "FALSE" => Resolved::Bool(false),
        "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" if version == Version::V2 => {
            Resolved::Bool(true)
        }
        "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" if version == Version::V2 => {
            Resolved::Bool(false)
        }
        "" | "~" | "null" | "Null" | "NULL" => Resolved::Null,
        ".nan" | ".NaN" | ".NAN" | ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" | "-.inf"
        | "-.Inf" | "-.INF" => Resolved::NonFinite,
        _ => return None,
    })
}

/// go-yaml's `resolveTable`: the first byte says which family a plain scalar might belong to.
fn hint(s: &str) -> u8 {
    match s.as_bytes().first() {
        None => b'N',
        Some(b'+' | b'-') => b'S',
        Some(b'0'..=b'9') => b'D',
        Some(b'y' | b'Y' | b'n' | b'N' | b't' | b'T' | b'f' | b'F' | b'o' | b'O' | b'~') => b'M',
        Some(b'.') => b'.',
        _ => 0,
    }
}

fn resolve(tag: Option<CoreTag>, s: &str, version: Version) -> Resolved {
    let h = hint(s);
    if h == 0 {
        return Resolved::Str;
    }
    if let Some(word) = lookup_word(s, version) {
        return word;
    }
    match h {
        b'.' => match go_parse_float(s) {
            Some(f) => Resolved::Float(f),
            None => Resolved::Str,
        },
        b'D' | b'S' => resolve_number(tag, s, version),
        _ => Resolved::Str,
    }
}

fn resolve_number(tag: Option<CoreTag>, s: &str, version: Version) -> Resolved {
    if (tag.is_none() || tag == Some(CoreTag::Timestamp))
        && let Some(t) = GoTime::parse(s)
    {
        return match t.to_rfc3339_nano() {
            Some(text) => Resolved::Timestamp(text),
            None => Resolved::BadTimestamp,
        };
    }
    let plain: std::borrow::Cow<str> = if s.contains('_') {
        std::borrow::Cow::Owned(s.replace('_', ""))
    } else {
        std::borrow::Cow::Borrowed(s)
    };
    if let Some(i) = go_parse_int(&plain, 0) {
        return Resolved::Int(i);
    }
    if let Some(u) = go_parse_uint(&plain, 0) {
        return Resolved::Uint(u);
    }
    if is_yaml_style_float(&plain)
        && let Some(f) = go_parse_float(&plain)
    {
        return Resolved::Float(f);
    }
    let radix_tail = |prefix: &str, radix: u32| -> Option<Resolved> {
        if let Some(rest) = plain.strip_prefix(prefix) {
            if let Some(i) = go_parse_int(rest, radix) {
                return Some(Resolved::Int(i));
            }
            if let Some(u) = go_parse_uint(rest, radix) {
                return Some(Resolved::Uint(u));
            }
        } else if let Some(rest) = plain.strip_prefix(&format!("-{prefix}")[..])
            && let Some(i) = go_parse_int(&format!("-{rest}"), radix)
        {
            return Some(Resolved::Int(i));
        }
        None
    };
    if plain.starts_with("0b") || plain.starts_with("-0b") {
        if let Some(r) = radix_tail("0b", 2) {
            return r;
        }
    } else if version == Version::V3
        && (plain.starts_with("0o") || plain.starts_with("-0o"))
        && let Some(r) = radix_tail("0o", 8)
    {
        return r;
    }
    Resolved::Str
}

/// How go-yaml v2 (sigs.k8s.io/yaml, YAML 1.1) reads an untagged plain scalar.
pub(crate) fn resolve_plain_yaml11(s: &str) -> Resolved {
    resolve(None, s, Version::V2)
}

/// How go-yaml v3 (kyaml) reads an untagged plain scalar.
pub(crate) fn resolve_plain(s: &str) -> Resolved {
    resolve(None, s, Version::V3)
}

/// How go-yaml v3 reads a scalar with an explicit core tag (`!!int "7"`): the resolved kind must
/// match the tag, except that an integer satisfies `!!float`. `None` when it does not match
/// (go-yaml: "cannot decode !!str `x` as a !!int").
pub(crate) fn resolve_tagged(tag: CoreTag, s: &str) -> Option<Resolved> {
    let r = resolve(Some(tag), s, Version::V3);
    match (tag, r) {
        (CoreTag::Bool, r @ Resolved::Bool(_)) => Some(r),
        (CoreTag::Null, Resolved::Null) => Some(Resolved::Null),
        (CoreTag::Int, r @ (Resolved::Int(_) | Resolved::Uint(_))) => Some(r),
        (CoreTag::Float, r @ (Resolved::Float(_) | Resolved::NonFinite)) => Some(r),
        // go-yaml converts only `int`/`int64` results, not `uint64` ones.
        (CoreTag::Float, Resolved::Int(i)) => Some(Resolved::Float(i as f64)),
        (CoreTag::Timestamp, r @ (Resolved::Timestamp(_) | Resolved::BadTimestamp)) => Some(r),
        _ => None,
    }
}

/// Whether go-yaml v2 would read `s`, written as a plain scalar, back as the same string; if not,
/// its encoder double-quotes the string. Also false for YAML 1.1 base 60 numbers (`1:20`), which
/// go-yaml quotes for the sake of other parsers.
pub(crate) fn plain_is_string_v2(s: &str) -> bool {
    resolve(None, s, Version::V2) == Resolved::Str && !is_base60_float(s)
}

/// `^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`
fn is_base60_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        i = 1;
    }
    if !b.get(i).is_some_and(u8::is_ascii_digit) || !b.contains(&b':') {
        return false;
    }
    i += 1;
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
        i += 1;
    }
    let mut groups = 0;
    while b.get(i) == Some(&b':') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() && i - start < 2 {
            i += 1;
        }
        match i - start {
            1 => {}
            2 if b[start] <= b'5' => {}
            _ => return false,
        }
        groups += 1;
    }
    if groups == 0 {
        return false;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
            i += 1;
        }
    }
    i == b.len()
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`
fn is_yaml_style_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        i = 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            digits(&mut i);
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// Go's `strconv.ParseUint(s, base, 64)` for base 0 (prefixes `0x`, `0o`, `0b`, and a leading
/// `0` meaning octal) or an explicit base. Underscores are not accepted (go-yaml strips them).
fn go_parse_uint(s: &str, base: u32) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let (radix, digits) = if base == 0 {
        let b = s.as_bytes();
        if b[0] == b'0' {
            match b.get(1).map(u8::to_ascii_lowercase) {
                Some(b'b') if b.len() >= 3 => (2, &s[2..]),
                Some(b'o') if b.len() >= 3 => (8, &s[2..]),
                Some(b'x') if b.len() >= 3 => (16, &s[2..]),
                _ => (8, &s[1..]),
            }
        } else {
            (10, s)
        }
    } else {
        (base, s)
    };
    let mut n: u64 = 0;
    for c in digits.bytes() {
        let d = match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            b'a'..=b'z' | b'A'..=b'Z' => u32::from(c.to_ascii_lowercase() - b'a') + 10,
            _ => return None,
        };
        if d >= radix {
            return None;
        }
        n = n.checked_mul(u64::from(radix))?.checked_add(u64::from(d))?;
    }
    Some(n)
}

/// Go's `strconv.ParseInt(s, base, 64)`: an optional sign, then [`go_parse_uint`].
fn go_parse_int(s: &str, base: u32) -> Option<i64> {
    let (neg, rest) = match s.as_bytes().first() {
        Some(b'+') => (false, &s[1..]),
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    let u = go_parse_uint(rest, base)?;
    if neg {
        if u <= 1 << 63 {
            Some((u as i64).wrapping_neg())
        } else {
            None
        }
    } else {
        i64::try_from(u).ok()
    }
}

/// Go's `strconv.ParseFloat(s, 64)` for the decimal spellings go-yaml lets through: a finite
/// result, `None` on syntax errors and on overflow (Go's `ErrRange`).
fn go_parse_float(s: &str) -> Option<f64> {
    // Rust also accepts "inf"/"nan"/"infinity"; go-yaml only gets here with digits or a dot.
    let b = s.as_bytes();
    let body = b.strip_prefix(b"+").or_else(|| b.strip_prefix(b"-")).unwrap_or(b);
    if !body.first().is_some_and(|c| c.is_ascii_digit() || *c == b'.') {
        return None;
    }
    if !is_yaml_style_float(s) {
        return None;
    }
    s.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// A time as Go's `time.Parse` returns it for go-yaml's timestamp layouts: wall clock fields
/// plus the zone offset as written (UTC when there is none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GoTime {
    year: u32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    nanos: u32,
    /// Seconds east of UTC.
    offset: i32,
}

/// Go's `getnum(s, false)`: one or two digits.
fn getnum(s: &[u8]) -> Option<(u32, &[u8])> {
    let d0 = *s.first().filter(|c| c.is_ascii_digit())?;
    match s.get(1).filter(|c| c.is_ascii_digit()) {
        Some(d1) => Some((u32::from(d0 - b'0') * 10 + u32::from(d1 - b'0'), &s[2..])),
        None => Some((u32::from(d0 - b'0'), &s[1..])),
    }
}

impl GoTime {
    /// go-yaml's `parseTimestamp`: the first of these Go layouts that parses the whole string:
    /// `2006-1-2T15:4:5.999999999Z07:00`, the same with `t`, `2006-1-2 15:4:5.999999999`
    /// (no zone: UTC), `2006-1-2`.
    pub(crate) fn parse(s: &str) -> Option<GoTime> {
        let b = s.as_bytes();
        // Quick check: all date formats start with YYYY-.
        if b.len() < 5 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
            return None;
        }
        // The date part is common to every layout; what follows selects the layout.
        let year = b[..4].iter().fold(0, |n, c| n * 10 + u32::from(c - b'0'));
        let (month, rest) = getnum(&b[5..])?;
        if !(1..=12).contains(&month) {
            return None;
        }
        let rest = rest.strip_prefix(b"-")?;
        let (day, rest) = getnum(rest)?;
        let mut t = GoTime {
            year,
            month,
            day,
            hour: 0,
            minute: 0,
            second: 0,
            nanos: 0,
            offset: 0,
        };
        let zone = match rest.first() {
            None => {
                return t.valid_day().then_some(t);
            }
            Some(b'T' | b't') => true,
            Some(b' ') => false,
            Some(_) => return None,
        };
        let mut rest = &rest[1..];
        if !zone {
            // Go's layout matching treats a run of spaces as one space.
            while let Some(r) = rest.strip_prefix(b" ") {
                rest = r;
            }
        }
        let (hour, r) = getnum(rest)?;
        let r = r.strip_prefix(b":")?;
        let (minute, r) = getnum(r)?;
        let r = r.strip_prefix(b":")?;
        let (second, mut r) = getnum(r)?;
        if hour >= 24 || minute >= 60 || second >= 60 {
            return None;
        }
        t.hour = hour;
        t.minute = minute;
        t.second = second;
        if r.len() >= 2 && (r[0] == b'.' || r[0] == b',') && r[1].is_ascii_digit() {
            let n = r[1..].iter().take_while(|c| c.is_ascii_digit()).count();
            // Go keeps the first nine digits.
            let mut nanos = 0;
            for i in 0..9 {
                nanos = nanos * 10 + r.get(1 + i).filter(|_| i < n).map_or(0, |c| u32::from(c - b'0'));
            }
            t.nanos = nanos;
            r = &r[1 + n..];
        }
        if zone {
            if let Some(rest) = r.strip_prefix(b"Z") {
                r = rest;
            } else {
                if r.len() < 6 || r[3] != b':' {
                    return None;
                }
                let two = |d: &[u8]| -> Option<i32> {
                    (d[0].is_ascii_digit() && d[1].is_ascii_digit())
                        .then(|| i32::from(d[0] - b'0') * 10 + i32::from(d[1] - b'0'))
                };
                let (hh, mm) = (two(&r[1..3])?, two(&r[4..6])?);
                if hh > 24 || mm > 60 {
                    return None;
                }
                let offset = (hh * 60 + mm) * 60;
                t.offset = match r[0] {
                    b'+' => offset,
                    b'-' => -offset,
                    _ => return None,
                };
                r = &r[6..];
            }
        }
        (r.is_empty() && t.valid_day()).then_some(t)
    }

    fn valid_day(&self) -> bool {
        let leap =
            self.year.is_multiple_of(4) && (!self.year.is_multiple_of(100) || self.year.is_multiple_of(400));
        let days = match self.month {
            2 if leap => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        (1..=days).contains(&self.day)
    }

    /// Go's `time.Time.MarshalJSON` text (RFC 3339 with trailing-zero-free nanoseconds), or
    /// `None` where Go refuses (zone offset of 24 hours or more).
    pub(crate) fn to_rfc3339_nano(self) -> Option<String> {
        use std::fmt::Write as _;
        let mut s = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        );
        if self.nanos != 0 {
            let frac = format!("{:09}", self.nanos);
            s.push('.');
            s.push_str(frac.trim_end_matches('0'));
        }
        if self.offset == 0 {
            s.push('Z');
        } else {
            let minutes = self.offset.abs() / 60;
            if minutes / 60 >= 24 {
                return None;
            }
            let sign = if self.offset < 0 { '-' } else { '+' };
            let _ = write!(s, "{sign}{:02}:{:02}", minutes / 60, minutes % 60);
        }
        Some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v3_plain_scalars_resolve_as_kyaml_reads_them() {
        use Resolved::*;
        let cases: &[(&str, Resolved)] = &[
            ("yes", Str),
            ("on", Str),
            ("True", Bool(true)),
            ("~", Null),
            ("", Null),
            ("0755", Int(493)),
            ("09", Float(9.0)),
            ("0x1F", Int(31)),
            ("0o17", Int(15)),
            ("0b101", Int(5)),
            ("0b-101", Int(-5)),
            ("0o-17", Int(-15)),
            ("-0b11", Int(-3)),
            ("1_000", Int(1000)),
            ("+12", Int(12)),
            ("-0", Int(0)),
            ("18446744073709551615", Uint(u64::MAX)),
            ("18446744073709551616", Float(18446744073709551616.0)),
            ("1.50", Float(1.5)),
            (".5", Float(0.5)),
            ("5.", Float(5.0)),
            ("1e3", Float(1000.0)),
            ("1e400", Str),
            ("._5", Str),
            ("1:20", Str),
            (".inf", NonFinite),
            ("-.Inf", NonFinite),
            (".nan", NonFinite),
            ("<<", Str),
            ("0x", Str),
            ("12abc", Str),
            ("2001-12-14", Timestamp("2001-12-14T00:00:00Z".into())),
            (
                "2001-12-14t21:59:43.10-05:00",
                Timestamp("2001-12-14T21:59:43.1-05:00".into()),
            ),
            (
                "2001-12-14 21:59:43.10",
                Timestamp("2001-12-14T21:59:43.1Z".into()),
            ),
            ("2002-1-2", Timestamp("2002-01-02T00:00:00Z".into())),
            (
                "2001-12-14T00:00:00+00:00",
                Timestamp("2001-12-14T00:00:00Z".into()),
            ),
            (
                "2001-12-14T00:00:00,123456789123Z",
                Timestamp("2001-12-14T00:00:00.123456789Z".into()),
            ),
            ("2001-12-14T00:00:00+24:00", BadTimestamp),
            ("2001-02-29", Str),
            ("2000-02-29", Timestamp("2000-02-29T00:00:00Z".into())),
            ("2001-12-14 21:59:43.10 -5", Str),
            ("2001-13-01", Str),
        ];
        for (input, want) in cases {
            assert_eq!(&resolve_plain(input), want, "{input:?}");
        }
    }

    #[test]
    fn v2_quotes_what_yaml_1_1_would_not_read_back_as_a_string() {
        for s in [
            "yes",
            "n",
            "Off",
            "~",
            "null",
            "",
            "123",
            "0755",
            "1.5",
            "1e3",
            ".inf",
            "1:20",
            "2001-12-14",
        ] {
            assert!(!plain_is_string_v2(s), "{s:?} must be quoted");
        }
        for s in [
            "<<",
            "yesno",
            "abc",
            "1.2.3",
            "0x",
            "1e",
            "v1",
            "-",
            "+",
            ".",
            "1:70",
            "12:30:45x",
        ] {
            assert!(plain_is_string_v2(s), "{s:?} can stay plain");
        }
    }

    #[test]
    fn tagged_scalars_must_match_their_tag() {
        assert_eq!(resolve_tagged(CoreTag::Int, "7"), Some(Resolved::Int(7)));
        assert_eq!(resolve_tagged(CoreTag::Float, "1"), Some(Resolved::Float(1.0)));
        assert_eq!(resolve_tagged(CoreTag::Int, "abc"), None);
        assert_eq!(resolve_tagged(CoreTag::Bool, "yes"), None);
        assert_eq!(resolve_tagged(CoreTag::Null, "~"), Some(Resolved::Null));
    }
}
