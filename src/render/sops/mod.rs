//! SOPS-encrypted files, decrypted when a render reads them (issue 17 part 1): the render's
//! [`Loader`](super::load::Loader) passes every file it reads through [`decrypt_if_encrypted`], so
//! resources, patches, replacements sources and generator inputs are decrypted the same way, in
//! `render`, `diff`, `validate`, `apply` and the daemon. Why here and not in `source`: the source
//! stage hands out the repository as it is (validate needs to see a file that should be encrypted
//! but is not), and Flux's kustomize-controller also decrypts while it builds.
//!
//! This is a port of sops v3 (`getsops/sops`: `aes/cipher.go`, `sops.go` `Tree.Decrypt`,
//! `stores/`, `cmd/sops/common.DecryptTree`), matched value for value:
//! - values `ENC[AES256_GCM,data:,iv:,tag:,type:str|int|float|bool|bytes|time|comment]`: AES-256-GCM
//!   with sops' 32-byte IV, the additional data being the value's path of keys joined by `:` plus a
//!   trailing `:` (sequence items add nothing to the path);
//! - the data key: the `sops.age[].enc` (or single `key_groups[].age[].enc`) armored age file,
//!   unwrapped with the [`keys`] identities by the `age` crate;
//! - the MAC: SHA-512 over the cleartext of every value in document order (nulls and comments
//!   skipped; with `mac_only_encrypted` only the encrypted ones, after a fixed 32-byte prefix),
//!   each value written as Go's sops writes it (`True`/`False`, shortest decimal floats), hex
//!   upper-case, compared with `sops.mac` decrypted with `lastmodified` (RFC 3339) as additional data;
//! - which values are encrypted: `unencrypted_suffix` (default `_unencrypted`), `encrypted_suffix`,
//!   `unencrypted_regex`, `encrypted_regex` tested on every key of the value's path.
//!
//! Decrypted files are handed back as text in their own format (YAML for YAML, JSON for JSON, the
//! raw `data` of sops' binary format), with the `sops` metadata removed. The data key and the
//! decrypted byte buffers are zeroized when dropped; the values then live in the render's objects
//! (ordinary strings, freed with the render). Masking is `plan::mask`'s: only `v1` Secrets may be
//! encrypted resources ([`SopsError::NotSecret`]).

pub mod keys;

use std::sync::LazyLock;

use aes_gcm::aead::consts::U32;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::aes::Aes256;
use aes_gcm::{AesGcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use sha2::{Digest, Sha512};
use zeroize::Zeroizing;

pub use keys::{Decryption, KeyError, Keys};

use crate::manifest::yaml::Limits;
use crate::source::TreePath;

/// sops' cipher: AES-256-GCM with a 32-byte nonce (`aes.nonceSize`).
type SopsGcm = AesGcm<Aes256, U32>;

/// `sops.MACOnlyEncryptedInitialization`: hashed first when only encrypted values are MACed, so
/// that such a MAC never equals the MAC over all values.
const MAC_ONLY_ENCRYPTED_INIT: [u8; 32] = [
    0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0x0b, 0x0b,
    0x97, 0x5b, 0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69,
];

/// Placeholders of [`Decryption::Placeholders`] start with this text (base64-encoded where the
/// value sits under a Secret's `data`), so a diff can tell an encrypted value it could not read.
pub const PLACEHOLDER_PREFIX: &str = "sops-encrypted:";

/// sops' value format (`aes.encre`), unanchored at the end as sops' is.
static ENC_RE: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r"^ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]").expect("constant regex")
});

/// Why an encrypted file cannot be read; each starts with the file. Never quotes a value.
#[derive(Debug, thiserror::Error)]
pub enum SopsError {
    #[error(
        "{file}: SOPS-encrypted, but no age key was given (--age-key-file PATH or SOPS_AGE_KEY_FILE; \
         daemon: decryption.age_key_file)"
    )]
    NoKey { file: TreePath },
    #[error("{file}: SOPS-encrypted for {recipients}; no identity of {key_file} matches")]
    NoMatchingKey {
        file: TreePath,
        recipients: String,
        key_file: String,
    },
    #[error("{file}: SOPS metadata: {message}")]
    Metadata { file: TreePath, message: String },
    #[error("{file}: not a SOPS file kgitops can read: {message}")]
    Parse { file: TreePath, message: String },
    #[error("{file}: SOPS: unsupported: {what}")]
    Unsupported { file: TreePath, what: String },
    #[error("{file}: SOPS value at {path:?} cannot be decrypted: {message}")]
    Value {
        file: TreePath,
        path: String,
        message: String,
    },
    #[error(
        "{file}: SOPS MAC mismatch: the file was changed after it was encrypted (tampered with, or edited \
         without sops)"
    )]
    MacMismatch { file: TreePath },
    #[error("{file}: SOPS MAC cannot be decrypted (tampered with, or the metadata was edited)")]
    MacUndecryptable { file: TreePath },
    #[error(
        "{file}: document {index}: a SOPS-encrypted {kind} (only v1 Secrets may be encrypted: their values \
         are masked in every output, other kinds would be printed in clear)"
    )]
    NotSecret {
        file: TreePath,
        index: usize,
        kind: String,
    },
    #[error(
        "{file}: document {index}: its apiVersion, kind or metadata are SOPS-encrypted, so it cannot be rendered \
         without the age key (pass --age-key-file, or encrypt only the values: encrypted_regex: ^(data|stringData)$)"
    )]
    EncryptedIdentity { file: TreePath, index: usize },
    #[error(
        "{file}: SOPS-encrypted Helm values are not supported (helm reads values from disk, and decrypted \
         values are never written to disk); put secret values in an encrypted Secret instead"
    )]
    HelmValues { file: TreePath },
}

/// A parsed SOPS document, with mapping order kept (the MAC follows the file's order, which
/// `serde_json::Map` does not keep).
#[derive(Clone, Debug, PartialEq)]
enum Node {
    Map(Vec<(String, Node)>),
    Seq(Vec<Node>),
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Null,
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a YAML or JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        // Go's decoders give an int within int64 and a float64 beyond.
        Ok(i64::try_from(v).map(Node::Int).unwrap_or(Node::Float(v as f64)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(key) = map.next_key::<Node>()? {
            let Node::Str(key) = key else {
                // sops: "Tree contains a non-string key ... Only string keys are supported".
                return Err(de::Error::custom(
                    "a mapping key that is not a string (sops supports only string keys)",
                ));
            };
            let value = map.next_value::<Node>()?;
            items.push((key, value));
        }
        Ok(Node::Map(items))
    }
}

impl Node {
    fn into_json(self) -> Value {
        match self {
            Node::Map(items) => Value::Object(items.into_iter().map(|(k, v)| (k, v.into_json())).collect()),
            Node::Seq(items) => Value::Array(items.into_iter().map(Node::into_json).collect()),
            Node::Str(s) => Value::String(s),
            Node::Int(i) => Value::from(i),
            Node::Float(f) => serde_json::Number::from_f64(f)
                .map(Value::Number)
                .unwrap_or(Value::Null),
            Node::Bool(b) => Value::Bool(b),
            Node::Null => Value::Null,
        }
    }

    fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(items) => items.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// The file formats sops stores, told apart by extension as sops and Flux do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
    Dotenv,
    /// sops' binary store: a JSON document `{"data": "...", "sops": {...}}`, the file's bytes
    /// being `data`'s cleartext.
    Binary,
}

impl Format {
    /// sops' `formats.FormatForPath`.
    pub fn of(path: &TreePath) -> Format {
        let name = path.to_string();
        let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
        match ext {
            "yaml" | "yml" => Format::Yaml,
            "json" => Format::Json,
            "env" => Format::Dotenv,
            _ => Format::Binary,
        }
    }
}

/// Cheap test run on every file a render reads: sops writes `lastmodified` in every format's
/// metadata (`sops_lastmodified=` in dotenv), and a file without it and the metadata key is
/// returned untouched.
fn may_be_sops(bytes: &[u8]) -> bool {
    // memchr's SIMD search: every file of every render passes here (CRD bundles of megabytes).
    let has = |needle: &[u8]| memchr::memmem::find(bytes, needle).is_some();
    // The metadata key as each store writes it: a top-level `sops:` in YAML, `"sops"` in JSON
    // (and the binary store), `sops_mac=` in dotenv. A large file that merely mentions both words
    // is then rarely parsed a second time.
    has(b"lastmodified")
        && (bytes.starts_with(b"sops:") || has(b"\nsops:") || has(b"\"sops\"") || has(b"sops_mac="))
}

/// What a render reads for a file: its bytes, decrypted when it is a SOPS file.
pub struct Read {
    pub bytes: Vec<u8>,
    /// The file was SOPS-encrypted (its cleartext is in `bytes`, or placeholders in its place).
    pub encrypted: bool,
}

/// `bytes` (the content of `file`) as a render reads it: decrypted per `decryption` when the file is
/// SOPS-encrypted, as they are otherwise.
pub fn decrypt_if_encrypted(
    file: &TreePath,
    bytes: Vec<u8>,
    decryption: &Decryption,
    limits: &Limits,
) -> Result<Read, SopsError> {
    if !may_be_sops(&bytes) {
        return Ok(Read {
            bytes,
            encrypted: false,
        });
    }
    let format = Format::of(file);
    let Some(parsed) = parse(file, &bytes, format, limits)? else {
        return Ok(Read {
            bytes,
            encrypted: false,
        });
    };
    let out = decrypt_parsed(file, parsed, decryption)?;
    Ok(Read {
        bytes: out,
        encrypted: true,
    })
}

/// Whether `bytes` (the content of `file`) is a SOPS file: what the validate rule and the Helm
/// values refusal ask.
pub fn is_encrypted(file: &TreePath, bytes: &[u8], limits: &Limits) -> bool {
    may_be_sops(bytes) && matches!(parse(file, bytes, Format::of(file), limits), Ok(Some(_)))
}

/// A SOPS file split into its documents and metadata.
struct Parsed {
    format: Format,
    documents: Vec<Node>,
    metadata: Node,
}

/// Parses `bytes`; `None` when there is no top-level `sops` mapping (not a SOPS file).
fn parse(
    file: &TreePath,
    bytes: &[u8],
    format: Format,
    limits: &Limits,
) -> Result<Option<Parsed>, SopsError> {
    let parse_err = |message: String| SopsError::Parse {
        file: file.clone(),
        message,
    };
    let text = std::str::from_utf8(bytes).map_err(|_| parse_err("not UTF-8 text".into()))?;
    let mut documents: Vec<Node> = match format {
        Format::Dotenv => return parse_dotenv(file, text),
        Format::Json | Format::Binary => {
            // A binary file that is not JSON is not a SOPS file.
            match serde_json::from_str::<Node>(text) {
                Ok(node) => vec![node],
                Err(_) if format == Format::Binary => return Ok(None),
                Err(e) => return Err(parse_err(e.to_string())),
            }
        }
        Format::Yaml => {
            // The project's reader checks the limits (alias bombs, depth) first.
            crate::manifest::yaml::parse_documents(text, &file.to_string(), limits)
                .map_err(|e| parse_err(e.to_string()))?;
            let options = serde_saphyr::options! {
                budget: serde_saphyr::budget! {
                    max_depth: limits.max_depth.min(Limits::TYPED_MAX_DEPTH),
                    max_aliases: limits.max_aliases,
                    max_documents: limits.max_documents,
                    max_nodes: limits.max_nodes,
                },
                duplicate_keys: serde_saphyr::DuplicateKeyPolicy::Error,
                with_snippet: false,
                emit_comments: false,
                // go-yaml v3 (sops' reader) resolves only YAML 1.2's true/false spellings as
                // booleans: `yes`, `n`, `on` stay strings, in keys and in the MAC.
                strict_booleans: true,
            };
            serde_saphyr::from_str_multiple_with_options::<Node, _>(text, options)
                .map_err(|e| parse_err(e.to_string()))?
        }
    };
    // sops' `stores.ExtractMetadata`: the first document's `sops` is the metadata; the key is
    // dropped from every document.
    let mut metadata = None;
    for (i, doc) in documents.iter_mut().enumerate() {
        if let Node::Map(items) = doc
            && let Some(pos) = items.iter().position(|(k, _)| k == "sops")
        {
            let (_, meta) = items.remove(pos);
            if i == 0 {
                metadata = Some(meta);
            }
        }
    }
    let Some(metadata) = metadata else {
        return Ok(None);
    };
    if !matches!(metadata, Node::Map(_)) || metadata.get("mac").is_none() {
        // A `sops:` key of some other meaning.
        return Ok(None);
    }
    if format == Format::Binary
        && !matches!(documents.as_slice(), [Node::Map(items)] if items.len() == 1 && items[0].0 == "data")
    {
        return Err(parse_err("binary SOPS file without a single `data` value".into()));
    }
    Ok(Some(Parsed {
        format,
        documents,
        metadata,
    }))
}

/// sops' dotenv store: `KEY=VALUE` lines (comments `#`), metadata flattened as `sops_*` keys
/// (`sops_age__list_0__map_enc`, newlines written `\n`).
fn parse_dotenv(file: &TreePath, text: &str) -> Result<Option<Parsed>, SopsError> {
    let mut items = Vec::new();
    let mut meta: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(SopsError::Parse {
                file: file.clone(),
                message: "a dotenv line without `=`".into(),
            });
        };
        // sops' dotenv store writes newlines in values as `\n`.
        let value = value.replace("\\n", "\n");
        match key.strip_prefix("sops_") {
            Some(meta_key) => meta.push((meta_key.to_string(), value)),
            None => items.push((key.to_string(), Node::Str(value))),
        }
    }
    if !meta.iter().any(|(k, _)| k == "mac") {
        return Ok(None);
    }
    Ok(Some(Parsed {
        format: Format::Dotenv,
        documents: vec![Node::Map(items)],
        metadata: unflatten(file, meta)?,
    }))
}

/// sops' `unflattenTreeBranch` for the metadata keys dotenv needs: `a__list_N__map_b` paths.
fn unflatten(file: &TreePath, flat: Vec<(String, String)>) -> Result<Node, SopsError> {
    let mut root = Node::Map(Vec::new());
    for (key, value) in flat {
        let mut node = &mut root;
        let mut parts = key.split("__").peekable();
        let mut name = parts.next().unwrap_or_default().to_string();
        loop {
            let Some(part) = parts.next() else {
                let Node::Map(items) = node else {
                    return Err(meta_err(file, "flattened metadata mixes lists and maps"));
                };
                let value = match value.as_str() {
                    "true" if name == "mac_only_encrypted" => Node::Bool(true),
                    _ => Node::Str(value),
                };
                items.push((name, value));
                break;
            };
            let Node::Map(items) = node else {
                return Err(meta_err(file, "flattened metadata mixes lists and maps"));
            };
            if let Some(index) = part.strip_prefix("list_") {
                let index: usize = index.parse().map_err(|_| meta_err(file, "bad list index"))?;
                let pos = match items.iter().position(|(k, _)| *k == name) {
                    Some(p) => p,
                    None => {
                        items.push((name.clone(), Node::Seq(Vec::new())));
                        items.len() - 1
                    }
                };
                let Node::Seq(list) = &mut items[pos].1 else {
                    return Err(meta_err(file, "flattened metadata mixes lists and maps"));
                };
                while list.len() <= index {
                    list.push(Node::Map(Vec::new()));
                }
                node = &mut list[index];
                let Some(next) = parts.next() else {
                    return Err(meta_err(file, "list entry without a key"));
                };
                name = next.strip_prefix("map_").unwrap_or(next).to_string();
            } else {
                return Err(meta_err(file, "unexpected flattened metadata key"));
            }
        }
    }
    Ok(root)
}

fn meta_err(file: &TreePath, message: &str) -> SopsError {
    SopsError::Metadata {
        file: file.clone(),
        message: message.to_string(),
    }
}

/// The parts of `sops:` that decryption uses (sops' `stores.metadata`).
#[derive(Debug, Default, serde::Deserialize)]
struct Metadata {
    #[serde(default)]
    age: Vec<AgeKey>,
    #[serde(default)]
    key_groups: Vec<KeyGroup>,
    #[serde(default)]
    shamir_threshold: Option<Value>,
    #[serde(default)]
    lastmodified: String,
    #[serde(default)]
    mac: String,
    #[serde(default)]
    unencrypted_suffix: String,
    #[serde(default)]
    encrypted_suffix: String,
    #[serde(default)]
    unencrypted_regex: String,
    #[serde(default)]
    encrypted_regex: String,
    #[serde(default)]
    unencrypted_comment_regex: String,
    #[serde(default)]
    encrypted_comment_regex: String,
    #[serde(default)]
    mac_only_encrypted: bool,
}

#[derive(Debug, serde::Deserialize)]
struct AgeKey {
    recipient: String,
    enc: String,
}

#[derive(Debug, serde::Deserialize)]
struct KeyGroup {
    #[serde(default)]
    age: Vec<AgeKey>,
}

/// Which values are encrypted (sops' `Tree.shouldBeEncrypted` without the comment rules, which
/// are refused).
enum Rule {
    UnencryptedSuffix(String),
    EncryptedSuffix(String),
    UnencryptedRegex(regex::Regex),
    EncryptedRegex(regex::Regex),
}

impl Rule {
    fn encrypted(&self, path: &[String]) -> bool {
        match self {
            Rule::UnencryptedSuffix(s) => !path.iter().any(|p| p.ends_with(s.as_str())),
            Rule::EncryptedSuffix(s) => path.iter().any(|p| p.ends_with(s.as_str())),
            Rule::UnencryptedRegex(r) => !path.iter().any(|p| r.is_match(p)),
            Rule::EncryptedRegex(r) => path.iter().any(|p| r.is_match(p)),
        }
    }
}

fn metadata(file: &TreePath, node: &Node) -> Result<(Metadata, Rule), SopsError> {
    let meta: Metadata =
        serde_json::from_value(node.clone().into_json()).map_err(|e| SopsError::Metadata {
            file: file.clone(),
            message: e.to_string(),
        })?;
    if !meta.unencrypted_comment_regex.is_empty() || !meta.encrypted_comment_regex.is_empty() {
        return Err(SopsError::Unsupported {
            file: file.clone(),
            what: "unencrypted_comment_regex / encrypted_comment_regex (kgitops does not read YAML comments)"
                .into(),
        });
    }
    let regex = |r: &str| {
        regex::Regex::new(r).map_err(|e| SopsError::Metadata {
            file: file.clone(),
            message: format!("invalid regular expression: {e}"),
        })
    };
    let mut rules = Vec::new();
    if !meta.unencrypted_suffix.is_empty() {
        rules.push(Rule::UnencryptedSuffix(meta.unencrypted_suffix.clone()));
    }
    if !meta.encrypted_suffix.is_empty() {
        rules.push(Rule::EncryptedSuffix(meta.encrypted_suffix.clone()));
    }
    if !meta.unencrypted_regex.is_empty() {
        rules.push(Rule::UnencryptedRegex(regex(&meta.unencrypted_regex)?));
    }
    if !meta.encrypted_regex.is_empty() {
        rules.push(Rule::EncryptedRegex(regex(&meta.encrypted_regex)?));
    }
    let rule = match rules.len() {
        // sops' `metadata.ToInternal`: the default.
        0 => Rule::UnencryptedSuffix("_unencrypted".into()),
        1 => rules.remove(0),
        _ => {
            return Err(meta_err(
                file,
                "more than one of encrypted_suffix, unencrypted_suffix, encrypted_regex, unencrypted_regex",
            ));
        }
    };
    Ok((meta, rule))
}

/// sops' `Metadata.LastModified.Format(time.RFC3339)` of the parsed `lastmodified`: Go drops
/// fractional seconds and writes a zero offset as `Z`.
fn lastmodified_aad(file: &TreePath, text: &str) -> Result<String, SopsError> {
    let ts: jiff::Timestamp = text
        .parse()
        .map_err(|_| meta_err(file, "lastmodified is not an RFC 3339 time"))?;
    let offset_part = &text[text.len().saturating_sub(6)..];
    let (sign, rest) = offset_part.split_at(1);
    let zoned_offset =
        if text.ends_with('Z') || text.ends_with('z') || offset_part == "+00:00" || offset_part == "-00:00" {
            None
        } else if (sign == "+" || sign == "-") && rest.len() == 5 && &rest[2..3] == ":" {
            Some(offset_part.to_string())
        } else {
            return Err(meta_err(file, "lastmodified is not an RFC 3339 time"));
        };
    match zoned_offset {
        None => Ok(ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()),
        Some(off) => {
            let offset: jiff::tz::Offset = {
                let hours: i8 = off[1..3]
                    .parse()
                    .map_err(|_| meta_err(file, "bad lastmodified offset"))?;
                let minutes: i32 = off[4..6]
                    .parse()
                    .map_err(|_| meta_err(file, "bad lastmodified offset"))?;
                let secs = i32::from(hours) * 3600 + minutes * 60;
                jiff::tz::Offset::from_seconds(if sign == "-" { -secs } else { secs })
                    .map_err(|_| meta_err(file, "bad lastmodified offset"))?
            };
            let dt = offset.to_datetime(ts);
            Ok(format!("{}{off}", dt.strftime("%Y-%m-%dT%H:%M:%S")))
        }
    }
}

/// The 32-byte data key: the first age stanza one of `keys` opens.
fn data_key(file: &TreePath, meta: &Metadata, keys: &Keys) -> Result<Zeroizing<Vec<u8>>, SopsError> {
    if meta.key_groups.len() > 1 {
        return Err(SopsError::Unsupported {
            file: file.clone(),
            what: "several key_groups (Shamir secret sharing)".into(),
        });
    }
    let _ = &meta.shamir_threshold;
    let stanzas: Vec<&AgeKey> = meta
        .age
        .iter()
        .chain(meta.key_groups.iter().flat_map(|g| g.age.iter()))
        .collect();
    if stanzas.is_empty() {
        return Err(SopsError::Unsupported {
            file: file.clone(),
            what: "no age recipient in the metadata (kgitops decrypts with age keys only; PGP and cloud KMS are \
                   not supported)"
                .into(),
        });
    }
    for stanza in &stanzas {
        let armored = age::armor::ArmoredReader::new(stanza.enc.as_bytes());
        let Ok(decryptor) = age::Decryptor::new_buffered(std::io::BufReader::new(armored)) else {
            continue;
        };
        let Ok(mut reader) = decryptor.decrypt(keys.identities()) else {
            continue;
        };
        let mut key = Zeroizing::new(Vec::with_capacity(32));
        if std::io::Read::read_to_end(&mut reader, &mut key).is_ok() && key.len() == 32 {
            return Ok(key);
        }
    }
    Err(SopsError::NoMatchingKey {
        file: file.clone(),
        recipients: stanzas
            .iter()
            .map(|s| s.recipient.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        key_file: keys.file().display().to_string(),
    })
}

/// One `ENC[...]` value, decoded.
struct EncValue {
    data: Vec<u8>,
    iv: Vec<u8>,
    tag: Vec<u8>,
    kind: String,
}

fn parse_enc(text: &str) -> Result<EncValue, String> {
    let caps = ENC_RE
        .captures(text)
        .ok_or_else(|| "not in sops' ENC[AES256_GCM,...] format".to_string())?;
    let b64 = |i: usize, what: &str| B64.decode(&caps[i]).map_err(|_| format!("{what} is not base64"));
    Ok(EncValue {
        data: b64(1, "data")?,
        iv: b64(2, "iv")?,
        tag: b64(3, "tag")?,
        kind: caps[4].to_string(),
    })
}

/// sops' `aes.Cipher.Decrypt`: the cleartext bytes of `text` and its type, or the empty value.
fn decrypt_value(text: &str, key: &[u8], aad: &str) -> Result<(Zeroizing<Vec<u8>>, String), String> {
    if text.is_empty() {
        return Ok((Zeroizing::new(Vec::new()), "str".into()));
    }
    let enc = parse_enc(text)?;
    if enc.iv.len() != 32 {
        return Err(format!(
            "unsupported IV length {} (sops writes 32 bytes)",
            enc.iv.len()
        ));
    }
    let cipher = SopsGcm::new_from_slice(key).map_err(|_| "bad data key length".to_string())?;
    let mut sealed = enc.data;
    sealed.extend_from_slice(&enc.tag);
    let plain = cipher
        .decrypt(
            Nonce::<U32>::from_slice(&enc.iv),
            Payload {
                msg: &sealed,
                aad: aad.as_bytes(),
            },
        )
        .map_err(|_| "authentication failed (tampered value, moved value, or wrong data key)".to_string())?;
    Ok((Zeroizing::new(plain), enc.kind))
}

/// Go's `strconv.FormatFloat(f, 'f', -1, 64)`.
fn go_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "+Inf".into() } else { "-Inf".into() }
    } else {
        // Rust's shortest round-trip digits, never in exponent form, as Go's 'f' with -1.
        format!("{f}")
    }
}

/// Go's `strconv.ParseBool`.
fn go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// A decrypted value as sops' tree holds it, and its MAC bytes (sops' `ToBytes`).
fn typed(plain: &[u8], kind: &str) -> Result<(Node, Zeroizing<Vec<u8>>), String> {
    let text = || std::str::from_utf8(plain).map_err(|_| format!("type {kind}: not UTF-8"));
    let node = match kind {
        "str" | "bytes" | "time" => Node::Str(text()?.to_string()),
        "int" => Node::Int(
            text()?
                .parse()
                .map_err(|_| "type int: not an integer".to_string())?,
        ),
        "float" => Node::Float(
            text()?
                .parse()
                .map_err(|_| "type float: not a number".to_string())?,
        ),
        "bool" => Node::Bool(go_bool(text()?).ok_or("type bool: not a boolean")?),
        "comment" => return Err("an encrypted comment where a value is expected".into()),
        other => return Err(format!("unknown type {other:?}")),
    };
    let mac = mac_bytes(&node).unwrap_or_default();
    Ok((node, mac))
}

/// sops' `ToBytes` of a leaf; `None` for what is not a leaf (or null, which sops never walks).
fn mac_bytes(node: &Node) -> Option<Zeroizing<Vec<u8>>> {
    let text = match node {
        Node::Str(s) => s.clone(),
        Node::Int(i) => i.to_string(),
        Node::Float(f) => go_float(*f),
        Node::Bool(true) => "True".into(),
        Node::Bool(false) => "False".into(),
        Node::Null | Node::Map(_) | Node::Seq(_) => return None,
    };
    Some(Zeroizing::new(text.into_bytes()))
}

/// How the leaves are treated: decrypted with the data key, or replaced by placeholders.
enum Mode<'k> {
    Decrypt(&'k [u8]),
    Placeholders,
}

/// Walks a document as sops' `walkBranch`/`walkSlice`: decrypts (or replaces) the encrypted
/// leaves in place and hashes what the MAC covers.
fn walk(
    file: &TreePath,
    node: &mut Node,
    path: &mut Vec<String>,
    rule: &Rule,
    mac_only_encrypted: bool,
    mode: &Mode,
    hash: &mut Sha512,
) -> Result<(), SopsError> {
    match node {
        Node::Map(items) => {
            for (key, value) in items.iter_mut() {
                path.push(key.clone());
                let r = walk(file, value, path, rule, mac_only_encrypted, mode, hash);
                path.pop();
                r?;
            }
            Ok(())
        }
        Node::Seq(items) => {
            for item in items.iter_mut() {
                walk(file, item, path, rule, mac_only_encrypted, mode, hash)?;
            }
            Ok(())
        }
        // sops never walks a null (`walkValue` returns it as it is).
        Node::Null => Ok(()),
        leaf => {
            let encrypted = rule.encrypted(path);
            if encrypted {
                let value_err = |message: String| SopsError::Value {
                    file: file.clone(),
                    path: path.join(":"),
                    message,
                };
                let Node::Str(text) = &*leaf else {
                    return Err(value_err("expected an encrypted value (a string)".into()));
                };
                match mode {
                    Mode::Decrypt(key) => {
                        let aad = format!("{}:", path.join(":"));
                        let (plain, kind) = decrypt_value(text, key, &aad).map_err(value_err)?;
                        let (value, mac) = typed(&plain, &kind).map_err(value_err)?;
                        hash.update(&mac[..]);
                        *leaf = value;
                    }
                    Mode::Placeholders => {
                        if !text.is_empty() {
                            *leaf = Node::Str(placeholder(text));
                        }
                    }
                }
            } else if !mac_only_encrypted && let Some(bytes) = mac_bytes(leaf) {
                hash.update(&bytes[..]);
            }
            Ok(())
        }
    }
}

/// What stands for an encrypted value when there is no key: derived from the ciphertext, so two
/// revisions show a change exactly when sops wrote a new ciphertext (a new value, or a re-encryption).
pub fn placeholder(ciphertext: &str) -> String {
    let digest = sha2::Sha256::digest(ciphertext.as_bytes());
    format!("{PLACEHOLDER_PREFIX}{}", &hex::encode(digest)[..16])
}

/// Decrypts (or replaces) every value, verifies the MAC, and writes the result in the file's
/// format.
fn decrypt_parsed(
    file: &TreePath,
    mut parsed: Parsed,
    decryption: &Decryption,
) -> Result<Vec<u8>, SopsError> {
    let (meta, rule) = metadata(file, &parsed.metadata)?;
    let key = match decryption {
        Decryption::NoKey => return Err(SopsError::NoKey { file: file.clone() }),
        Decryption::Keys(keys) => Some(data_key(file, &meta, keys)?),
        Decryption::Placeholders => None,
    };
    let mode = match &key {
        Some(k) => Mode::Decrypt(k),
        None => Mode::Placeholders,
    };
    let mut hash = Sha512::new();
    if meta.mac_only_encrypted {
        hash.update(MAC_ONLY_ENCRYPTED_INIT);
    }
    for doc in &mut parsed.documents {
        walk(
            file,
            doc,
            &mut Vec::new(),
            &rule,
            meta.mac_only_encrypted,
            &mode,
            &mut hash,
        )?;
    }
    if let Some(key) = &key {
        let computed = hex::encode_upper(hash.finalize());
        let aad = lastmodified_aad(file, &meta.lastmodified)?;
        let (stored, _) = decrypt_value(&meta.mac, key, &aad)
            .map_err(|_| SopsError::MacUndecryptable { file: file.clone() })?;
        if !bool::from(subtle::ConstantTimeEq::ct_eq(&stored[..], computed.as_bytes())) {
            return Err(SopsError::MacMismatch { file: file.clone() });
        }
    }
    emit(file, parsed, key.is_none())
}

/// The decrypted documents in the file's own format.
fn emit(file: &TreePath, parsed: Parsed, placeholders: bool) -> Result<Vec<u8>, SopsError> {
    let values: Vec<Value> = parsed.documents.into_iter().map(Node::into_json).collect();
    let out = match parsed.format {
        Format::Yaml => {
            let values = encode_placeholders_in_secret_data(values, placeholders);
            check_secrets(file, &values)?;
            crate::manifest::yaml::to_yaml_stream(&values).into_bytes()
        }
        Format::Json => {
            let values = encode_placeholders_in_secret_data(values, placeholders);
            check_secrets(file, &values)?;
            let mut out = Vec::new();
            for v in &values {
                out.extend(serde_json::to_vec_pretty(v).unwrap_or_default());
                out.push(b'\n');
            }
            out
        }
        Format::Dotenv => {
            let mut out = String::new();
            if let Some(Value::Object(map)) = values.first() {
                for (k, v) in map {
                    let v = v.as_str().unwrap_or_default();
                    out.push_str(&format!("{k}={}\n", v.replace('\n', "\\n")));
                }
            }
            out.into_bytes()
        }
        Format::Binary => match values.first().and_then(|v| v.get("data")) {
            Some(Value::String(s)) => s.clone().into_bytes(),
            _ => Vec::new(),
        },
    };
    Ok(out)
}

/// In placeholder mode a Secret's `data` values must stay base64 (schemas check it): the
/// placeholder text is encoded there.
fn encode_placeholders_in_secret_data(mut values: Vec<Value>, placeholders: bool) -> Vec<Value> {
    if !placeholders {
        return values;
    }
    for v in &mut values {
        if crate::manifest::is_secret(v)
            && let Some(Value::Object(data)) = v.get_mut("data")
        {
            for value in data.values_mut() {
                if let Value::String(s) = value
                    && s.starts_with(PLACEHOLDER_PREFIX)
                {
                    *s = B64.encode(s.as_bytes());
                }
            }
        }
    }
    values
}

/// Encrypted resources must be Secrets (see the module docs). A document that is not an object
/// (a patch list, a values file) is left to the reader that parses it.
fn check_secrets(file: &TreePath, values: &[Value]) -> Result<(), SopsError> {
    for (i, v) in values.iter().enumerate() {
        let placeholder_in = |field: &str| {
            v.get(field)
                .is_some_and(|f| serde_json::to_string(f).is_ok_and(|t| t.contains(PLACEHOLDER_PREFIX)))
        };
        if ["apiVersion", "kind", "metadata"].into_iter().any(placeholder_in) {
            return Err(SopsError::EncryptedIdentity {
                file: file.clone(),
                index: i + 1,
            });
        }
        let Some(kind) = v.get("kind").and_then(Value::as_str) else {
            continue;
        };
        if v.get("apiVersion").is_some() && !crate::manifest::is_secret(v) {
            return Err(SopsError::NotSecret {
                file: file.clone(),
                index: i + 1,
                kind: kind.to_string(),
            });
        }
    }
    Ok(())
}

/// Whether a Secret's value (as rendered: base64 under `data`, text under `stringData`) is a
/// placeholder of [`Decryption::Placeholders`].
pub fn is_placeholder(value: &Value, base64_encoded: bool) -> bool {
    let Some(s) = value.as_str() else {
        return false;
    };
    if base64_encoded {
        B64.decode(s)
            .is_ok_and(|bytes| bytes.starts_with(PLACEHOLDER_PREFIX.as_bytes()))
    } else {
        s.starts_with(PLACEHOLDER_PREFIX)
    }
}

#[cfg(test)]
mod tests;
