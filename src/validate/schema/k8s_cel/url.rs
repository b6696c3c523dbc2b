//! The Kubernetes URL library (`urls.go`): `url(string)`, `isURL(string)`, and on a URL
//! `getScheme()`, `getHost()`, `getHostname()`, `getPort()`, `getEscapedPath()`, `getQuery()`.
//!
//! A string is a URL when Go's `url.ParseRequestURI` accepts it (an absolute URI, or an absolute
//! path); the getters read Go's `url.Parse` of it (which also splits off a `#fragment`). Both are
//! ported here from Go 1.26's net/url (the Go the pinned apiserver is built with) rather than taken
//! from the url crate, whose WHATWG parsing accepts and normalizes differently.

use std::collections::HashMap;

use cel::common::types::{CelBool, CelList, CelMap, CelMapKey, CelString, Type};
use cel::common::value::Val;
use cel::{DeclarationError, Env, ExecutionError};

use super::{error, opaque_val};

static URL_TYPE: Type = Type::new_unspecified_type("kubernetes.URL");

/// Go's `url.URL`, the parts the getters read.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Url {
    scheme: String,
    host: String,
    /// The path, unescaped.
    path: String,
    /// The path as written, when that differs from Go's escaping of `path`.
    raw_path: String,
    raw_query: String,
}

opaque_val!(Url, &URL_TYPE, |a, b| a == b);

pub(super) fn register(env: &mut Env) -> Result<(), DeclarationError> {
    cel::add_overload!(env, fn url: (CelString) -> Result<Url>, name = "url", id = "string_to_url")?;
    cel::add_overload!(env, fn is_url: (CelString) -> CelBool, name = "isURL", id = "is_url_string")?;
    cel::add_member_overload!(env, fn get_scheme: (Url) -> CelString, name = "getScheme", id = "url_get_scheme")?;
    cel::add_member_overload!(env, fn get_host: (Url) -> CelString, name = "getHost", id = "url_get_host")?;
    cel::add_member_overload!(env, fn get_hostname: (Url) -> CelString, name = "getHostname", id = "url_get_hostname")?;
    cel::add_member_overload!(env, fn get_port: (Url) -> CelString, name = "getPort", id = "url_get_port")?;
    cel::add_member_overload!(env, fn get_escaped_path: (Url) -> CelString, name = "getEscapedPath", id = "url_get_escaped_path")?;
    cel::add_member_overload!(env, fn get_query: (Url) -> CelMap, name = "getQuery", id = "url_get_query")?;
    Ok(())
}

fn url(s: &CelString<'_>) -> Result<Url, ExecutionError> {
    let fail = |e: String| {
        error(
            "url",
            format!("URL parse error during conversion from string: {e}"),
        )
    };
    parse(s.inner(), true).map_err(fail)?;
    let (u, fragment) = s.inner().split_once('#').unwrap_or((s.inner(), ""));
    let parsed = parse(u, false).map_err(fail)?;
    unescape(fragment, Mode::Fragment).map_err(fail)?;
    Ok(parsed)
}

/// Go's `url.ParseRequestURI`, for the format library's `uri`.
pub(super) fn parse_request_uri(s: &str) -> Result<(), String> {
    parse(s, true).map(|_| ())
}

fn is_url(s: &CelString<'_>) -> CelBool {
    parse(s.inner(), true).is_ok().into()
}

fn get_scheme(u: &Url) -> CelString<'static> {
    u.scheme.clone().into()
}

fn get_host(u: &Url) -> CelString<'static> {
    u.host.clone().into()
}

fn get_hostname(u: &Url) -> CelString<'static> {
    split_host_port(&u.host).0.to_string().into()
}

fn get_port(u: &Url) -> CelString<'static> {
    split_host_port(&u.host).1.to_string().into()
}

/// Go's `URL.EscapedPath`.
fn get_escaped_path(u: &Url) -> CelString<'static> {
    if !u.raw_path.is_empty()
        && valid_encoded(&u.raw_path)
        && unescape(&u.raw_path, Mode::Path).is_ok_and(|p| p == u.path)
    {
        return u.raw_path.clone().into();
    }
    if u.path == "*" {
        return "*".to_string().into();
    }
    escape_path(&u.path).into()
}

/// Go's `URL.Query()`: `k=v` pairs split on `&`, query-unescaped; pairs with a `;` or a bad escape
/// are dropped.
fn get_query(u: &Url) -> CelMap<'static> {
    let mut values: HashMap<String, Vec<String>> = HashMap::new();
    for pair in u.raw_query.split('&') {
        if pair.is_empty() || pair.contains(';') {
            continue;
        }
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (Ok(k), Ok(v)) = (unescape(k, Mode::Query), unescape(v, Mode::Query)) else {
            continue;
        };
        values.entry(k).or_default().push(v);
    }
    let map: HashMap<CelMapKey<'static>, Box<dyn Val>> = values
        .into_iter()
        .map(|(k, vs)| {
            let list: Vec<Box<dyn Val>> = vs
                .into_iter()
                .map(|v| Box::new(CelString::from(v)) as Box<dyn Val>)
                .collect();
            (CelMapKey::from(k), Box::new(CelList::from(list)) as Box<dyn Val>)
        })
        .collect();
    CelMap::from(map)
}

/// Go's `splitHostPort`.
fn split_host_port(host_port: &str) -> (&str, &str) {
    let (mut host, mut port) = (host_port, "");
    if let Some(colon) = host.rfind(':')
        && valid_optional_port(&host[colon..])
    {
        (host, port) = (&host[..colon], &host[colon + 1..]);
    }
    if host.starts_with('[') && host.ends_with(']') && host.len() >= 2 {
        host = &host[1..host.len() - 1];
    }
    (host, port)
}

fn valid_optional_port(port: &str) -> bool {
    port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()))
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Path,
    Host,
    Zone,
    UserPassword,
    Query,
    Fragment,
}

/// Go's encoding table: the ASCII bytes other than letters and digits a mode leaves unescaped.
fn unreserved(c: u8, mode: Mode) -> bool {
    if c.is_ascii_alphanumeric() {
        return true;
    }
    let extra: &[u8] = match mode {
        Mode::Path => b"$&+,-./:;=@_~",
        Mode::Host | Mode::Zone => b"!\"$&'()*+,-.:;<=>[]_~",
        Mode::UserPassword => b"$&+,-.;=_~",
        Mode::Query => b"-._~",
        Mode::Fragment => b"!$&'()*+,-./:;=?@_~",
    };
    extra.contains(&c)
}

fn unhex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Go's `unescape`.
fn unescape(s: &str, mode: Mode) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let (Some(hi), Some(lo)) = (
                    b.get(i + 1).and_then(|c| unhex(*c)),
                    b.get(i + 2).and_then(|c| unhex(*c)),
                ) else {
                    let end = (i + 3).min(b.len());
                    return Err(format!(
                        "invalid URL escape {:?}",
                        String::from_utf8_lossy(&b[i..end])
                    ));
                };
                let escape = &s[i..i + 3];
                if mode == Mode::Host && hi < 8 && escape != "%25" {
                    return Err(format!("invalid URL escape {escape:?}"));
                }
                let v = hi << 4 | lo;
                if mode == Mode::Zone && escape != "%25" && v != b' ' && !unreserved(v, Mode::Host) {
                    return Err(format!("invalid URL escape {escape:?}"));
                }
                out.push(v);
                i += 3;
            }
            b'+' => {
                out.push(if mode == Mode::Query { b' ' } else { b'+' });
                i += 1;
            }
            c => {
                if matches!(mode, Mode::Host | Mode::Zone) && c < 0x80 && !unreserved(c, mode) {
                    return Err(format!("invalid character {:?} in host name", c as char));
                }
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Go's `escape(path, encodePath)`.
fn escape_path(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &c in s.as_bytes() {
        if unreserved(c, Mode::Path) {
            out.push(c as char);
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}

/// Go's `validEncoded(s, encodePath)`.
fn valid_encoded(s: &str) -> bool {
    s.bytes()
        .all(|c| b"!$&'()*+,;=:@[]%".contains(&c) || unreserved(c, Mode::Path))
}

/// Go's `getScheme`: (scheme, rest).
fn get_scheme_of(raw: &str) -> Result<(&str, &str), String> {
    for (i, c) in raw.bytes().enumerate() {
        match c {
            b'a'..=b'z' | b'A'..=b'Z' => {}
            b'0'..=b'9' | b'+' | b'-' | b'.' if i == 0 => return Ok(("", raw)),
            b'0'..=b'9' | b'+' | b'-' | b'.' => {}
            b':' if i == 0 => return Err("missing protocol scheme".into()),
            b':' => return Ok((&raw[..i], &raw[i + 1..])),
            _ => return Ok(("", raw)),
        }
    }
    Ok(("", raw))
}

/// Go's `parse(rawURL, viaRequest)`, without the fragment.
fn parse(raw: &str, via_request: bool) -> Result<Url, String> {
    if raw.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err("net/url: invalid control character in URL".into());
    }
    if raw.is_empty() && via_request {
        return Err("empty url".into());
    }
    let mut url = Url {
        scheme: String::new(),
        host: String::new(),
        path: String::new(),
        raw_path: String::new(),
        raw_query: String::new(),
    };
    if raw == "*" {
        url.path = "*".into();
        return Ok(url);
    }
    let (scheme, mut rest) = get_scheme_of(raw)?;
    url.scheme = scheme.to_ascii_lowercase();
    if rest.ends_with('?') && rest.matches('?').count() == 1 {
        rest = &rest[..rest.len() - 1];
    } else if let Some((r, q)) = rest.split_once('?') {
        rest = r;
        url.raw_query = q.to_string();
    }
    if !rest.starts_with('/') {
        if !url.scheme.is_empty() {
            // Opaque (`mailto:x`): no host, no path.
            return Ok(url);
        }
        if via_request {
            return Err("invalid URI for request".into());
        }
        let segment = rest.split('/').next().unwrap_or("");
        if segment.contains(':') {
            return Err("first path segment in URL cannot contain colon".into());
        }
    }
    if (!url.scheme.is_empty() || !via_request && !rest.starts_with("///")) && rest.starts_with("//") {
        let authority_and_path = &rest[2..];
        let (authority, path) = match authority_and_path.find('/') {
            Some(i) => authority_and_path.split_at(i),
            None => (authority_and_path, ""),
        };
        url.host = parse_authority(&url.scheme, authority)?;
        rest = path;
    }
    let path = unescape(rest, Mode::Path)?;
    if escape_path(&path) != rest {
        url.raw_path = rest.to_string();
    }
    url.path = path;
    Ok(url)
}

/// Go's `parseAuthority`: the host (user info is checked, not kept).
fn parse_authority(scheme: &str, authority: &str) -> Result<String, String> {
    let (userinfo, host) = match authority.rfind('@') {
        Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
        None => (None, authority),
    };
    let host = parse_host(scheme, host)?;
    if let Some(userinfo) = userinfo {
        let valid = userinfo
            .chars()
            .all(|r| r.is_ascii_alphanumeric() || "-._:~!$&'()*+,;=%@".contains(r));
        if !valid {
            return Err("net/url: invalid userinfo".into());
        }
        let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
        unescape(user, Mode::UserPassword)?;
        unescape(password, Mode::UserPassword)?;
    }
    Ok(host)
}

/// Go's `parseHost` (strict colons for http and https, the Go 1.26 default).
fn parse_host(scheme: &str, host: &str) -> Result<String, String> {
    match host.rfind('[') {
        Some(i) if i > 0 => return Err("invalid IP-literal".into()),
        Some(_) => {
            let close = host.rfind(']').ok_or("missing ']' in host")?;
            let colon_port = &host[close + 1..];
            if !valid_optional_port(colon_port) {
                return Err(format!("invalid port {colon_port:?} after host"));
            }
            let colon_port = unescape(colon_port, Mode::Host)?;
            let hostname = &host[1..close];
            let unescaped = match hostname.find("%25") {
                Some(z) => unescape(&hostname[..z], Mode::Host)? + &unescape(&hostname[z..], Mode::Zone)?,
                None => unescape(hostname, Mode::Host)?,
            };
            // netip.ParseAddr: an IPv6 address, with an optional zone; IPv4 is refused.
            let addr = unescaped.split_once('%').map_or(unescaped.as_str(), |(a, _)| a);
            let zone_ok = unescaped.split_once('%').is_none_or(|(_, z)| !z.is_empty());
            if addr.parse::<std::net::Ipv6Addr>().is_err() || !zone_ok {
                return Err(format!("invalid host: ParseAddr({unescaped:?})"));
            }
            return Ok(format!("[{unescaped}]{colon_port}"));
        }
        None => {}
    }
    if let Some(first) = host.find(':') {
        let last = host.rfind(':').unwrap_or(first);
        let i = if scheme == "http" || scheme == "https" {
            first
        } else {
            last
        };
        let colon_port = &host[i..];
        if !valid_optional_port(colon_port) {
            return Err(format!("invalid port {colon_port:?} after host"));
        }
    }
    unescape(host, Mode::Host)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{all_fail, all_true};

    #[test]
    fn urls_as_the_apiserver_evaluates_them() {
        all_true(&[
            "isURL('https://example.com:8443/a/b?x=1') && isURL('/relative/path') && isURL('mailto:x@y')",
            "!isURL('example.com') && !isURL('') && !isURL('https://exa mple.com') && !isURL('http://a:b')",
            "!isURL('://x') && !isURL('http://[::1') && isURL('http://[::1]:80/')",
            "url('HTTPS://Example.com:8443/a%20b').getScheme() == 'https'",
            "url('https://example.com:8443/a').getHost() == 'example.com:8443'",
            "url('https://example.com:8443/a').getHostname() == 'example.com'",
            "url('https://[::1]:80/').getHostname() == '::1' && url('https://[::1]:80/').getPort() == '80'",
            "url('https://example.com/').getPort() == ''",
            "url('https://example.com/a%20b').getEscapedPath() == '/a%20b'",
            "url('https://example.com/a b').getEscapedPath() == '/a%20b'",
            "url('https://example.com/p?x=1&x=2&y=a+b').getQuery() == {'x': ['1', '2'], 'y': ['a b']}",
            "url('https://example.com/p#frag').getEscapedPath() == '/p'",
            "url('/a/b').getHost() == '' && url('/a/b').getEscapedPath() == '/a/b'",
        ]);
        all_fail(&[("url('example.com')", "invalid URI for request")]);
    }
}
