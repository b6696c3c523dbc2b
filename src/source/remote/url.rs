//! Remote URLs as git understands them: `https://`, `http://`, `ssh://` (and `git+ssh://`),
//! scp-like `[user@]host:path` or `[user@][host:port]:path`, `file://` and plain paths. Parsed only
//! as far as kgitops needs: the transport (which credentials apply), the SSH host and port (for the
//! known_hosts check) and a form safe to print (no userinfo).

/// How git talks to the remote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transport {
    /// `https://` or `http://`; `tls` is false for `http://`.
    Http {
        tls: bool,
    },
    Ssh,
    /// `file://` or a path on disk.
    Local,
}

/// A parsed remote URL.
#[derive(Clone)]
pub(crate) struct RemoteUrl {
    /// The URL as configured, handed to git2 unchanged. May hold credentials: never print it.
    raw: String,
    /// The URL without userinfo, for messages and logs.
    masked: String,
    pub transport: Transport,
    /// The user named in the URL (`git` in `git@host:path`).
    pub user: Option<String>,
    /// Host and port of an SSH or HTTP remote.
    pub host: String,
    pub port: u16,
}

impl std::fmt::Debug for RemoteUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.masked)
    }
}

/// Text that replaces credentials in printed URLs.
pub(crate) const MASK: &str = "***";

impl RemoteUrl {
    /// Parses `raw`; the error is a message about the URL (already masked by the caller).
    pub fn parse(raw: &str) -> Result<RemoteUrl, String> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err("the URL is empty".into());
        }
        if raw.contains("://") {
            return Self::parse_standard(raw);
        }
        // git's rule: a colon before the first slash makes `host:path` scp-like; else a local path.
        let colon = raw.find(':');
        let slash = raw.find('/');
        match (colon, slash) {
            (Some(c), Some(s)) if c < s => Self::parse_scp(raw),
            (Some(_), None) => Self::parse_scp(raw),
            _ => Ok(RemoteUrl {
                raw: raw.to_string(),
                masked: raw.to_string(),
                transport: Transport::Local,
                user: None,
                host: String::new(),
                port: 0,
            }),
        }
    }

    fn parse_standard(raw: &str) -> Result<RemoteUrl, String> {
        let url = url::Url::parse(raw).map_err(|e| format!("not a valid URL: {e}"))?;
        let (transport, default_port) = match url.scheme() {
            "https" => (Transport::Http { tls: true }, 443),
            "http" => (Transport::Http { tls: false }, 80),
            "ssh" | "git+ssh" | "ssh+git" => (Transport::Ssh, 22),
            "file" => (Transport::Local, 0),
            other => {
                return Err(format!(
                    "unsupported scheme '{other}' (use https://, http://, ssh://, git@host:path or file://)"
                ));
            }
        };
        let host = url
            .host_str()
            .unwrap_or("")
            .trim_matches(|c| c == '[' || c == ']')
            .to_string();
        if transport != Transport::Local && host.is_empty() {
            return Err("the URL has no host".into());
        }
        let has_userinfo = !url.username().is_empty() || url.password().is_some();
        let user = (!url.username().is_empty())
            .then(|| percent_decode(url.username()))
            .filter(|_| transport == Transport::Ssh);
        let mut bare = url.clone();
        // Both setters only fail for URLs that cannot have userinfo, which then has none to hide.
        let _ = bare.set_username("");
        let _ = bare.set_password(None);
        let mut masked = bare.to_string();
        if has_userinfo && let Some(at) = masked.find("://") {
            // An SSH user name is not a secret and says which account is used; anything else in
            // the userinfo (an HTTP user, a token, a password) is hidden.
            let shown = match (&user, url.password()) {
                (Some(user), None) => user.clone(),
                _ => MASK.to_string(),
            };
            masked.insert_str(at + 3, &format!("{shown}@"));
        }
        Ok(RemoteUrl {
            raw: raw.to_string(),
            masked,
            transport,
            user,
            host,
            port: url.port().unwrap_or(default_port),
        })
    }

    /// The scp-like forms libgit2 understands: `[user@]host:path`, `[[user@]host:port]:path` (the
    /// only way to give a port) and `[user@][ipv6]:path`.
    fn parse_scp(raw: &str) -> Result<RemoteUrl, String> {
        let invalid = |why: &str| {
            Err(format!(
                "not a valid scp-like address ({why}): use [user@]host:path, or [user@host:port]:path for a port"
            ))
        };
        // `user@` counts only before the first `:` (as in libgit2).
        let split_user = |s: &str| -> (Option<String>, String) {
            match (s.find('@'), s.find(':')) {
                (Some(at), colon) if colon.is_none_or(|c| at < c) => {
                    (Some(s[..at].to_string()), s[at + 1..].to_string())
                }
                _ => (None, s.to_string()),
            }
        };
        let (user, host, port, path) = if raw.starts_with('[') && !is_ipv6(raw) {
            let Some(close) = raw.find(']') else {
                return invalid("unclosed '['");
            };
            let Some(path) = raw[close + 1..].strip_prefix(':') else {
                return invalid("expected ':' after ']'");
            };
            let (user, host_port) = split_user(&raw[1..close]);
            let (host, port) = match host_port.split_once(':') {
                Some((host, port)) => {
                    let port = port
                        .parse::<u16>()
                        .map_err(|_| format!("invalid port '{port}'"))?;
                    (host.to_string(), port)
                }
                None => (host_port, 22),
            };
            (user, host, port, path.to_string())
        } else {
            let (user, rest) = split_user(raw);
            if rest.starts_with('[') {
                if !is_ipv6(&rest) {
                    // libgit2 would take `[host:port]` as a host name and fail to resolve it.
                    return invalid("a port goes inside the brackets with the user");
                }
                let close = rest.find(']').unwrap_or(rest.len() - 1);
                let Some(path) = rest[close + 1..].strip_prefix(':') else {
                    return invalid("expected ':' after ']'");
                };
                (user, rest[1..close].to_string(), 22, path.to_string())
            } else {
                let Some((host, path)) = rest.split_once(':') else {
                    return invalid("no ':'");
                };
                (user, host.to_string(), 22, path.to_string())
            }
        };
        if host.is_empty() {
            return invalid("no host");
        }
        if path.is_empty() {
            return invalid("no path");
        }
        Ok(RemoteUrl {
            raw: raw.to_string(),
            masked: raw.to_string(),
            transport: Transport::Ssh,
            user: user.filter(|u| !u.is_empty()),
            host,
            port,
        })
    }

    /// The parts of the URL's userinfo that may be secret (an HTTP user can be a token), for
    /// scrubbing libgit2 messages that echo them.
    pub fn userinfo_secrets(&self) -> Vec<&str> {
        let Some(rest) = self.raw.split_once("://").map(|(_, r)| r) else {
            return Vec::new();
        };
        let authority = rest.split('/').next().unwrap_or("");
        match authority.rsplit_once('@') {
            Some((userinfo, _)) => userinfo.split(':').filter(|p| !p.is_empty()).collect(),
            None => Vec::new(),
        }
    }

    /// The URL as configured, for git2 only.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// The URL without credentials, for messages.
    pub fn masked(&self) -> &str {
        &self.masked
    }

    /// The directory of a local remote (`file://` or a path).
    pub fn local_path(&self) -> Option<std::path::PathBuf> {
        if self.transport != Transport::Local {
            return None;
        }
        match url::Url::parse(&self.raw) {
            Ok(u) if u.scheme() == "file" => u.to_file_path().ok(),
            _ => Some(std::path::PathBuf::from(&self.raw)),
        }
    }

    /// The origin (scheme, host, port) of an HTTP(S) remote, as `https://host:443`: the only
    /// place its credentials are sent. `None` for other transports.
    pub fn origin(&self) -> Option<String> {
        match self.transport {
            Transport::Http { tls } => Some(format_origin(tls, &self.host, self.port)),
            Transport::Ssh | Transport::Local => None,
        }
    }

    /// The origin of `other`, a URL libgit2 is about to authenticate against, in the form of
    /// [`Self::origin`]; `None` when it is not an HTTP(S) URL.
    pub fn origin_of(other: &str) -> Option<String> {
        let url = url::Url::parse(other).ok()?;
        let tls = match url.scheme() {
            "https" => true,
            "http" => false,
            _ => return None,
        };
        let host = url.host_str()?.trim_matches(|c| c == '[' || c == ']');
        Some(format_origin(tls, host, url.port_or_known_default()?))
    }

    /// Whether the host is on this machine (credentials over plain HTTP are then not exposed).
    pub fn is_loopback(&self) -> bool {
        self.host == "localhost"
            || self
                .host
                .parse::<std::net::IpAddr>()
                .map(|ip| ip.is_loopback())
                .unwrap_or(false)
    }
}

fn format_origin(tls: bool, host: &str, port: u16) -> String {
    let scheme = if tls { "https" } else { "http" };
    format!("{scheme}://{}:{port}", host.to_ascii_lowercase())
}

/// Masks `raw` without parsing it as a whole: for configuration errors about a URL that did not
/// parse. Everything between `://` and the last `@` before the path is hidden.
pub(crate) fn mask_unparsed(raw: &str) -> String {
    let Some(scheme_end) = raw.find("://") else {
        return raw.to_string();
    };
    let authority_start = scheme_end + 3;
    let authority_end = raw[authority_start..]
        .find('/')
        .map(|i| authority_start + i)
        .unwrap_or(raw.len());
    match raw[authority_start..authority_end].rfind('@') {
        Some(at) => format!(
            "{}{MASK}{}",
            &raw[..authority_start],
            &raw[authority_start + at..]
        ),
        None => raw.to_string(),
    }
}

/// `[` followed by an IPv6 address (hex digits and at least two colons) and `]`, as libgit2 tells
/// `[::1]:path` from `[host:port]:path`.
fn is_ipv6(s: &str) -> bool {
    let Some(inner) = s
        .strip_prefix('[')
        .and_then(|r| r.split_once(']'))
        .map(|(i, _)| i)
    else {
        return false;
    };
    inner.matches(':').count() > 1 && inner.chars().all(|c| c == ':' || c.is_ascii_hexdigit())
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("u={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form_git_accepts() {
        let https =
            RemoteUrl::parse("https://x-access-token:ghp_SECRET@git.example:8443/org/platform.git").unwrap();
        assert_eq!(https.transport, Transport::Http { tls: true });
        assert_eq!((https.host.as_str(), https.port), ("git.example", 8443));
        assert_eq!(https.masked(), "https://***@git.example:8443/org/platform.git");
        assert_eq!(https.user, None);

        let token_only = RemoteUrl::parse("https://ghp_SECRET@git.example/p.git").unwrap();
        assert_eq!(token_only.masked(), "https://***@git.example/p.git");
        assert_eq!(token_only.userinfo_secrets(), ["ghp_SECRET"]);
        assert_eq!(https.userinfo_secrets(), ["x-access-token", "ghp_SECRET"]);
        let plain = RemoteUrl::parse("http://127.0.0.1:8080/p.git").unwrap();
        assert_eq!(plain.transport, Transport::Http { tls: false });
        assert_eq!(plain.masked(), "http://127.0.0.1:8080/p.git");
        assert!(plain.is_loopback());

        let ssh = RemoteUrl::parse("ssh://git@127.0.0.1:2222/srv/platform.git").unwrap();
        assert_eq!(ssh.transport, Transport::Ssh);
        assert_eq!(
            (ssh.user.as_deref(), ssh.host.as_str(), ssh.port),
            (Some("git"), "127.0.0.1", 2222)
        );
        assert_eq!(ssh.masked(), "ssh://git@127.0.0.1:2222/srv/platform.git");
        let ssh_pw = RemoteUrl::parse("ssh://git:hunter2@host/p.git").unwrap();
        assert_eq!(ssh_pw.masked(), "ssh://***@host/p.git");
        let ssh6 = RemoteUrl::parse("ssh://git@[::1]:2222/p.git").unwrap();
        assert_eq!((ssh6.host.as_str(), ssh6.port), ("::1", 2222));

        let scp = RemoteUrl::parse("git@github.example:org/platform.git").unwrap();
        assert_eq!(scp.transport, Transport::Ssh);
        assert_eq!(
            (scp.user.as_deref(), scp.host.as_str(), scp.port),
            (Some("git"), "github.example", 22)
        );
        let scp_port = RemoteUrl::parse("[git@127.0.0.1:2222]:/srv/p.git").unwrap();
        assert_eq!(
            (scp_port.user.as_deref(), scp_port.host.as_str(), scp_port.port),
            (Some("git"), "127.0.0.1", 2222)
        );
        let no_user = RemoteUrl::parse("[127.0.0.1:2222]:p.git").unwrap();
        assert_eq!(
            (no_user.user.as_deref(), no_user.host.as_str(), no_user.port),
            (None, "127.0.0.1", 2222)
        );
        let user_v6 = RemoteUrl::parse("git@[fe80::1]:p.git").unwrap();
        assert_eq!(
            (user_v6.user.as_deref(), user_v6.host.as_str()),
            (Some("git"), "fe80::1")
        );
        let scp_v6 = RemoteUrl::parse("[::1]:p.git").unwrap();
        assert_eq!(
            (scp_v6.user.as_deref(), scp_v6.host.as_str(), scp_v6.port),
            (None, "::1", 22)
        );

        for local in ["file:///srv/p.git", "/srv/p.git", "./p.git", "p.git", "../a/b:c"] {
            assert_eq!(
                RemoteUrl::parse(local).unwrap().transport,
                Transport::Local,
                "{local}"
            );
        }
        let path = |u: &str| RemoteUrl::parse(u).unwrap().local_path();
        assert_eq!(path("file:///srv/p.git"), Some("/srv/p.git".into()));
        assert_eq!(path("./p.git"), Some("./p.git".into()));
        assert_eq!(path("git@h:p.git"), None);
    }

    #[test]
    fn refuses_what_git_cannot_fetch() {
        assert!(RemoteUrl::parse("").is_err());
        assert!(
            RemoteUrl::parse("ftp://host/p.git")
                .unwrap_err()
                .contains("unsupported scheme 'ftp'")
        );
        assert!(RemoteUrl::parse("git@host:").is_err());
        assert!(RemoteUrl::parse("git@[host:22:p").is_err());
        // libgit2 cannot fetch this form; say which one it can.
        let err = RemoteUrl::parse("git@[127.0.0.1:2222]:/srv/p.git").unwrap_err();
        assert!(err.contains("[user@host:port]:path"), "{err}");
        assert!(
            RemoteUrl::parse("[git@host:http]:p")
                .unwrap_err()
                .contains("invalid port 'http'")
        );
        assert!(RemoteUrl::parse("ssh:///p.git").unwrap_err().contains("no host"));
    }

    #[test]
    fn an_origin_is_scheme_host_and_port() {
        let url = RemoteUrl::parse("https://tok@Git.Example/platform.git").unwrap();
        assert_eq!(url.origin().as_deref(), Some("https://git.example:443"));
        let same = [
            "https://git.example:443/other.git",
            "https://GIT.example/platform.git/info/refs",
        ];
        for other in same {
            assert_eq!(RemoteUrl::origin_of(other), url.origin(), "{other}");
        }
        let different = [
            "http://git.example/platform.git",
            "https://git.example:8443/platform.git",
            "https://mirror.git.example/platform.git",
        ];
        for other in different {
            assert_ne!(RemoteUrl::origin_of(other), url.origin(), "{other}");
        }
        assert_eq!(RemoteUrl::origin_of("ssh://git.example/p.git"), None);
        assert_eq!(RemoteUrl::parse("git@git.example:p.git").unwrap().origin(), None);
    }

    #[test]
    fn masks_userinfo_of_urls_that_do_not_parse() {
        assert_eq!(mask_unparsed("https://tok:en@ho st/p"), "https://***@ho st/p");
        assert_eq!(mask_unparsed("https://host/p@x"), "https://host/p@x");
        assert_eq!(mask_unparsed("git@host:p"), "git@host:p");
    }
}
