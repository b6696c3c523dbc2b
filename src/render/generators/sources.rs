//! Key/value sources of a generator (kustomize's `kv` loader): env files, then literals, then
//! files, with kustomize's parsing of each.

use crate::render::error::RenderError;
use crate::render::kustomization::GeneratorArgs;
use crate::render::load::{KustFile, Loader};

/// One key and its raw value (bytes: file contents need not be text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub key: String,
    pub value: Vec<u8>,
}

/// kustomize's `parseLiteralSource`: `key=value`, the value unquoted when wrapped in matching
/// single or double quotes.
pub fn parse_literal(source: &str) -> Result<Pair, String> {
    let invalid = || format!("invalid literal source {source}, expected key=value");
    if source.starts_with('=') {
        return Err(invalid());
    }
    let (key, value) = source.split_once('=').ok_or_else(invalid)?;
    let bytes = value.as_bytes();
    let unquoted = if bytes.len() >= 2
        && bytes[0] == bytes[bytes.len() - 1]
        && (bytes[0] == b'"' || bytes[0] == b'\'')
    {
        &value[1..value.len() - 1]
    } else {
        value
    };
    Ok(Pair {
        key: key.to_string(),
        value: unquoted.as_bytes().to_vec(),
    })
}

/// kustomize's `ParseFileSource`: `[key=]path`, the key defaulting to the path's last component.
pub fn parse_file_source(source: &str) -> Result<(String, String), String> {
    match source.matches('=').count() {
        0 => {
            let base = source.trim_end_matches('/').rsplit('/').next().unwrap_or(source);
            Ok((base.to_string(), source.to_string()))
        }
        1 if source.starts_with('=') => Err(format!(
            "missing key name for file path {:?} in source {source:?}",
            &source[1..]
        )),
        1 if source.ends_with('=') => Err(format!(
            "missing file path for key name {:?} in source {source:?}",
            &source[..source.len() - 1]
        )),
        1 => {
            let (k, p) = source.split_once('=').unwrap_or((source, ""));
            Ok((k.to_string(), p.to_string()))
        }
        _ => Err(format!("source {source:?} key name or file path contains '='")),
    }
}

/// kustomize's env-file parsing: one `KEY=value` per line; blank lines and `#` comments skipped;
/// leading whitespace trimmed, nothing else; a UTF-8 BOM on the first line is dropped.
///
/// A line without `=`: kustomize v5 makes the whole line a key with an empty value. For a
/// `secret` that line is most likely a secret value written without its key, and as a key it would
/// be shown in every diff and error; so a secret's env file refuses it, naming the line by number,
/// never by its text. A ConfigMap's keeps kustomize's behaviour.
pub fn parse_env(content: &[u8], secret: bool) -> Result<Vec<Pair>, String> {
    let mut out = Vec::new();
    let content = content.strip_suffix(b"\n").unwrap_or(content);
    if content.is_empty() {
        return Ok(out);
    }
    for (n, raw) in content.split(|b| *b == b'\n').enumerate() {
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        let text = std::str::from_utf8(line).map_err(|_| format!("line {n} has invalid utf8 bytes"))?;
        let text = if n == 0 {
            text.strip_prefix('\u{feff}').unwrap_or(text)
        } else {
            text
        };
        let text = text.trim_start();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let (key, value) = match text.split_once('=') {
            Some(pair) => pair,
            None if secret => {
                return Err(format!(
                    "line {} has no `=`: every line of a secretGenerator env file must be KEY=value \
                     (the line is not shown: it may be a secret value; kustomize would make it a key)",
                    n + 1
                ));
            }
            None => (text, ""),
        };
        out.push(Pair {
            key: key.to_string(),
            value: value.as_bytes().to_vec(),
        });
    }
    Ok(out)
}

/// All pairs of a generator, in kustomize's order: env files, literals, files; `secret` for a
/// secretGenerator ([`parse_env`] is stricter for it, and its errors never quote a literal).
pub fn load(
    loader: &Loader<'_>,
    kf: &KustFile,
    args: &GeneratorArgs,
    secret: bool,
) -> Result<Vec<Pair>, RenderError> {
    let name = args.name.clone().unwrap_or_default();
    let entry_error = |what: &'static str, entry: &str, message: String| RenderError::Entry {
        file: kf.file.clone(),
        what,
        entry: entry.to_string(),
        message: format!("(generator {name:?}) {message}"),
    };
    // Only a Secret's values are masked in every output: a configMapGenerator may not read a
    // SOPS-encrypted file (its cleartext would be printed by diffs).
    let read = |path: &crate::source::TreePath, what: &'static str, entry: &str| {
        let read = loader.read_decrypted(path)?;
        if read.encrypted && !secret {
            return Err(entry_error(
                what,
                entry,
                "is SOPS-encrypted: only a secretGenerator may read encrypted files (a ConfigMap's values \
                 are printed in clear)"
                    .into(),
            ));
        }
        Ok(read.bytes)
    };
    let mut pairs = Vec::new();
    let mut envs = args.envs.clone().unwrap_or_default();
    envs.extend(args.env.clone().filter(|e| !e.is_empty()));
    for env in &envs {
        let path = loader.resolve_file(kf, "env file", env)?;
        let content = read(&path, "env file", env)?;
        pairs.extend(parse_env(&content, secret).map_err(|e| entry_error("env file", env, e))?);
    }
    for (i, literal) in args.literals.iter().flatten().enumerate() {
        let pair = parse_literal(literal).map_err(|e| match secret {
            // Named by position, never by text: a secret's bad literal may be the value alone.
            true => entry_error(
                "literal",
                &format!("#{}", i + 1),
                "invalid literal source (not shown: it may be a secret value), expected key=value".into(),
            ),
            false => entry_error("literal", literal, e),
        })?;
        pairs.push(pair);
    }
    for source in args.files.iter().flatten() {
        let (key, file) = parse_file_source(source).map_err(|e| entry_error("file", source, e))?;
        let path = loader.resolve_file(kf, "file", &file)?;
        pairs.push(Pair {
            key,
            value: read(&path, "file", &file)?,
        });
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(k: &str, v: &str) -> Pair {
        Pair {
            key: k.into(),
            value: v.as_bytes().to_vec(),
        }
    }

    #[test]
    fn literals() {
        assert_eq!(parse_literal("a=b=c").unwrap(), pair("a", "b=c"));
        assert_eq!(parse_literal("q='x'").unwrap(), pair("q", "x"));
        assert_eq!(parse_literal("q=\"x'").unwrap(), pair("q", "\"x'"));
        assert_eq!(parse_literal("e=").unwrap(), pair("e", ""));
        assert!(parse_literal("=v").is_err());
        assert!(parse_literal("novalue").is_err());
    }

    #[test]
    fn file_sources() {
        assert_eq!(
            parse_file_source("conf/app.properties").unwrap(),
            ("app.properties".into(), "conf/app.properties".into())
        );
        assert_eq!(
            parse_file_source("k=conf/x").unwrap(),
            ("k".into(), "conf/x".into())
        );
        assert!(parse_file_source("=x").is_err());
        assert!(parse_file_source("k=").is_err());
        assert!(parse_file_source("a=b=c").is_err());
    }

    #[test]
    fn env_files() {
        let got = parse_env(b"\xef\xbb\xbfA=1\n  # c\n\nB = x \nC\nD=\"q\"\r\n", false).unwrap();
        assert_eq!(
            got,
            [
                pair("A", "1"),
                pair("B ", " x "),
                pair("C", ""),
                pair("D", "\"q\"")
            ]
        );
        assert!(parse_env(b"A=\xff\n", false).is_err());
    }

    #[test]
    fn a_bad_secret_literal_is_named_by_position_not_text() {
        use crate::manifest::yaml::Limits;
        use crate::render::memtree::MemTree;
        use crate::source::TreePath;
        let build = |generator: &str| {
            let kustomization = format!("{generator}:\n- name: g\n  literals: [a=b, hunter2-alone]\n");
            let tree = MemTree::new(&[("k/kustomization.yaml", kustomization.as_str())]);
            let loader = Loader::new(&tree, Limits::DEFAULT);
            crate::render::target::build(&loader, &TreePath::new("k").unwrap())
                .unwrap_err()
                .to_string()
        };
        let err = build("secretGenerator");
        assert!(
            err.contains("literal \"#2\"") && !err.contains("hunter2"),
            "{err}"
        );
        // A ConfigMap's literal is quoted, as kustomize does.
        assert!(build("configMapGenerator").contains("hunter2-alone"));
    }

    #[test]
    fn a_secret_env_line_without_equals_is_refused_by_number_not_text() {
        let content = b"user=admin\n# comment\nthe-s3cret-without-key\n";
        let err = parse_env(content, true).unwrap_err();
        assert!(err.starts_with("line 3 has no `=`"), "{err}");
        assert!(!err.contains("the-s3cret-without-key"), "{err}");
        // A ConfigMap's env file keeps kustomize's reading: the line is a key with an empty value.
        let pairs = parse_env(content, false).unwrap();
        assert_eq!(pairs[1], pair("the-s3cret-without-key", ""));
    }
}
