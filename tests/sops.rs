//! SOPS-encrypted files decrypted at render (issue 17 part 1), through the binary, with files
//! encrypted at test time by the REAL sops and age (built from Go modules by
//! `tests/tools/build-sops` and `tests/tools/build-age`, cached in target/tools/bin; scripts/test
//! builds them first, and this test builds them when missing): every value type, each metadata
//! variant, YAML and JSON, secretGenerator inputs (dotenv and binary), tampered value and MAC,
//! wrong and missing key, an SSH identity, the plaintext-under-encrypted-path validate finding,
//! the offline diff without the key, and no secret value in any output but `render`'s.

mod common;
#[path = "support/daemon_poll.rs"]
mod daemon_poll;
#[path = "support/http_client.rs"]
mod http_client;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use base64::Engine as _;
use serde_json::Value;

/// Every secret value of the fixtures: none may appear in diff, validate, apply or error output.
const SECRETS: &[&str] = &[
    "hunter2-typed-s3cr3t",
    "json-s3cr3t-value",
    "suffix-s3cr3t-value",
    "unenc-regex-s3cr3t",
    "mac-only-s3cr3t",
    "default-all-s3cr3t",
    "dotenv-s3cr3t-value",
    "binary-s3cr3t-cert",
    "patched-s3cr3t-value",
    "changed-s3cr3t-value",
];

struct Tools {
    sops: PathBuf,
    age_keygen: PathBuf,
}

/// Builds (or finds cached) the pinned sops and age; fails loudly when they cannot be built.
fn tools() -> &'static Tools {
    static TOOLS: OnceLock<Tools> = OnceLock::new();
    TOOLS.get_or_init(|| {
        let run = |script: &str| {
            let out = Command::new(common::repo_root().join("tests/tools").join(script))
                .output()
                .unwrap_or_else(|e| panic!("{script}: {e}"));
            assert!(
                out.status.success(),
                "{script} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
        };
        let age_dir = run("build-age");
        Tools {
            sops: run("build-sops"),
            age_keygen: age_dir.join("age-keygen"),
        }
    })
}

/// An age identity made by age-keygen: (key file, recipient).
fn keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let file = dir.join(name);
    let out = Command::new(&tools().age_keygen)
        .arg("-o")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "age-keygen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&file).unwrap();
    let recipient = text
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .unwrap()
        .to_string();
    (file, recipient)
}

/// `sops encrypt` of `plain` (named `name`, its extension choosing the format) with `flags`, in a
/// directory without `.sops.yaml`.
fn encrypt(work: &Path, name: &str, plain: &str, recipient: &str, flags: &[&str]) -> String {
    let dir = work.join("plain");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(name);
    std::fs::write(&file, plain).unwrap();
    let mut cmd = Command::new(&tools().sops);
    cmd.current_dir(&dir);
    // `mac_only_encrypted` has no command-line flag: it comes from a creation rule.
    if flags == ["--mac-only-encrypted"] {
        let config = work.join("mac-only.sops.yaml");
        std::fs::write(
            &config,
            format!("creation_rules:\n  - age: {recipient}\n    encrypted_regex: ^stringData$\n    mac_only_encrypted: true\n"),
        )
        .unwrap();
        cmd.arg("--config").arg(&config).arg("encrypt");
    } else {
        cmd.args(["encrypt", "--age", recipient]).args(flags);
    }
    let out = cmd.arg(&file).env_remove("SOPS_AGE_KEY_FILE").output().unwrap();
    assert!(
        out.status.success(),
        "sops encrypt {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

struct Fixture {
    _dir: tempfile::TempDir,
    repo: PathBuf,
    key: PathBuf,
    wrong_key: PathBuf,
    recipient: String,
    work: PathBuf,
}

const KUSTOMIZATION: &str = "\
resources:
  - config.yaml
  - secrets/typed.yaml
  - secrets/json.json
  - secrets/suffix.yaml
  - secrets/unencrypted-regex.yaml
  - secrets/mac-only.yaml
  - secrets/default.yaml
patches:
  - path: secrets/patch.yaml
secretGenerator:
  - name: generated
    namespace: kafka
    envs:
      - secrets/app.env
    files:
      - tls.crt=secrets/tls.crt
";

/// A git repository with one cluster whose Secrets are encrypted every way sops can, and a
/// `.sops.yaml` declaring `clusters/*/secrets/` encrypted.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().to_path_buf();
    let repo = work.join("repo");
    let (key, recipient) = keygen(&work, "key.txt");
    let (wrong_key, _) = keygen(&work, "wrong.txt");
    let r = &recipient;
    let secret = |name: &str, body: &str| {
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: kafka\ntype: Opaque\n{body}"
        )
    };
    // Every value type sops writes from YAML: str, int, float, bool; `data` stays base64 text.
    let typed = secret(
        "typed",
        &format!(
            "stringData:\n  password: hunter2-typed-s3cr3t\n  port: 9092\n  ratio: 1.5\n  enabled: true\n  \
             empty: \"\"\ndata:\n  token: {}\n",
            base64::engine::general_purpose::STANDARD.encode("patched-s3cr3t-value-old")
        ),
    );
    let c = "secrets/";
    let d = |f: &str| format!("clusters/dev/{c}{f}");
    write(
        &repo,
        &d("typed.yaml"),
        &encrypt(
            &work,
            "typed.yaml",
            &typed,
            r,
            &["--encrypted-regex", "^(data|stringData)$"],
        ),
    );
    let json = r#"{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "json", "namespace": "kafka"},
 "stringData": {"password": "json-s3cr3t-value", "count": 3}}"#;
    write(
        &repo,
        &d("json.json"),
        &encrypt(
            &work,
            "json.json",
            json,
            r,
            &["--encrypted-regex", "^stringData$"],
        ),
    );
    let suffix = secret("suffix", "stringData:\n  password: suffix-s3cr3t-value\n");
    // `Data` ends the key `stringData`: every value below it is encrypted.
    write(
        &repo,
        &d("suffix.yaml"),
        &encrypt(&work, "suffix.yaml", &suffix, r, &["--encrypted-suffix", "Data"]),
    );
    let unenc = secret(
        "unencrypted-regex",
        "stringData:\n  password: unenc-regex-s3cr3t\n",
    );
    write(
        &repo,
        &d("unencrypted-regex.yaml"),
        &encrypt(
            &work,
            "unencrypted-regex.yaml",
            &unenc,
            r,
            &["--unencrypted-regex", "^(apiVersion|kind|metadata|type)$"],
        ),
    );
    let mac_only = secret("mac-only", "stringData:\n  password: mac-only-s3cr3t\n");
    write(
        &repo,
        &d("mac-only.yaml"),
        &encrypt(&work, "mac-only.yaml", &mac_only, r, &["--mac-only-encrypted"]),
    );
    // sops' default: everything but keys ending in _unencrypted, apiVersion and kind included.
    let default = secret(
        "default",
        "stringData:\n  password: default-all-s3cr3t\n  note_unencrypted: visible\n",
    );
    write(
        &repo,
        &d("default.yaml"),
        &encrypt(&work, "default.yaml", &default, r, &[]),
    );
    // An encrypted strategic-merge patch of a Secret.
    let patch = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: typed\n  namespace: kafka\nstringData:\n  extra: patched-s3cr3t-value\n";
    write(
        &repo,
        &d("patch.yaml"),
        &encrypt(
            &work,
            "patch.yaml",
            patch,
            r,
            &["--encrypted-regex", "^stringData$"],
        ),
    );
    // secretGenerator inputs: dotenv and binary, by extension as sops and Flux tell them.
    write(
        &repo,
        &d("app.env"),
        &encrypt(
            &work,
            "app.env",
            "USER=admin\nPASSWORD=dotenv-s3cr3t-value\n",
            r,
            &[],
        ),
    );
    write(
        &repo,
        &d("tls.crt"),
        &encrypt(&work, "tls.crt", "binary-s3cr3t-cert\n", r, &[]),
    );
    write(
        &repo,
        "clusters/dev/config.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: plain\n  namespace: kafka\ndata:\n  a: b\n",
    );
    write(&repo, "clusters/dev/kustomization.yaml", KUSTOMIZATION);
    write(
        &repo,
        ".sops.yaml",
        &format!("creation_rules:\n  - path_regex: clusters/.*/secrets/.*\n    age: {recipient}\n"),
    );
    common::git(&repo, &["init", "-q", "-b", "main"]);
    common::git(&repo, &["add", "."]);
    common::git(&repo, &["commit", "-qm", "encrypted platform"]);
    Fixture {
        _dir: dir,
        repo,
        key,
        wrong_key,
        recipient,
        work,
    }
}

fn kgitops(repo: &Path, key: Option<&Path>, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kgitops"));
    cmd.args(args)
        .arg("--repo")
        .arg(repo)
        .env_remove("SOPS_AGE_KEY_FILE");
    if let Some(key) = key {
        cmd.arg("--age-key-file").arg(key);
    }
    cmd.output().expect("kgitops runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// No secret value, plain or base64, anywhere in `text`.
fn assert_no_secret(text: &str) {
    let b64 = base64::engine::general_purpose::STANDARD;
    for s in SECRETS {
        assert!(!text.contains(s), "secret value {s:?} leaked:\n{text}");
        assert!(!text.contains(&b64.encode(s)), "base64 of {s:?} leaked:\n{text}");
        assert!(
            !text.contains(&b64.encode(format!("{s}\n"))),
            "base64 of {s:?} leaked:\n{text}"
        );
    }
}

fn render(f: &Fixture, key: Option<&Path>) -> Output {
    kgitops(&f.repo, key, &["render", "--rev", "HEAD", "clusters/dev"])
}

fn objects(out: &Output) -> Vec<Value> {
    assert!(out.status.success(), "{}", text(out));
    let yaml = String::from_utf8(out.stdout.clone()).unwrap();
    kgitops::manifest::yaml::parse_documents(&yaml, "out", &kgitops::manifest::yaml::Limits::DEFAULT).unwrap()
}

fn named<'a>(objects: &'a [Value], name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| {
            o["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n == name || n.starts_with(&format!("{name}-")))
        })
        .unwrap_or_else(|| panic!("no object {name}"))
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn render_decrypts_every_type_variant_format_patch_and_generator_input() {
    let f = fixture();
    let objs = objects(&render(&f, Some(&f.key)));
    let typed = named(&objs, "typed");
    assert_eq!(typed["stringData"]["password"], "hunter2-typed-s3cr3t");
    assert_eq!(typed["stringData"]["port"], 9092);
    assert_eq!(typed["stringData"]["ratio"], 1.5);
    assert_eq!(typed["stringData"]["enabled"], true);
    assert_eq!(typed["stringData"]["empty"], "");
    assert_eq!(
        typed["stringData"]["extra"], "patched-s3cr3t-value",
        "the encrypted patch applied"
    );
    assert_eq!(typed["data"]["token"], b64("patched-s3cr3t-value-old"));
    assert!(typed.get("sops").is_none());
    assert_eq!(
        named(&objs, "json")["stringData"]["password"],
        "json-s3cr3t-value"
    );
    assert_eq!(named(&objs, "json")["stringData"]["count"], 3);
    assert_eq!(
        named(&objs, "suffix")["stringData"]["password"],
        "suffix-s3cr3t-value"
    );
    assert_eq!(
        named(&objs, "unencrypted-regex")["stringData"]["password"],
        "unenc-regex-s3cr3t"
    );
    assert_eq!(
        named(&objs, "mac-only")["stringData"]["password"],
        "mac-only-s3cr3t"
    );
    let default = named(&objs, "default");
    assert_eq!(default["stringData"]["password"], "default-all-s3cr3t");
    assert_eq!(default["stringData"]["note_unencrypted"], "visible");
    assert_eq!(default["kind"], "Secret");
    let generated = named(&objs, "generated");
    assert_eq!(generated["data"]["PASSWORD"], b64("dotenv-s3cr3t-value"));
    assert_eq!(generated["data"]["USER"], b64("admin"));
    assert_eq!(generated["data"]["tls.crt"], b64("binary-s3cr3t-cert\n"));
    assert_eq!(named(&objs, "plain")["data"]["a"], "b");
}

#[test]
fn a_config_map_generator_may_not_read_an_encrypted_file() {
    let f = fixture();
    write(
        &f.repo,
        "clusters/dev/kustomization.yaml",
        "configMapGenerator:\n  - name: leaky\n    envs:\n      - secrets/app.env\n",
    );
    common::git(&f.repo, &["commit", "-qam", "configmap from an encrypted file"]);
    let out = render(&f, Some(&f.key));
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(
        t.contains("is SOPS-encrypted: only a secretGenerator may read encrypted files"),
        "{t}"
    );
    assert_no_secret(&t);
}

#[test]
fn an_ssh_ed25519_key_decrypts_as_age_supports_it() {
    let f = fixture();
    let ssh_key = f.work.join("id_ed25519");
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "kgitops-test", "-f"])
        .arg(&ssh_key)
        .output()
        .expect("ssh-keygen runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let public = std::fs::read_to_string(ssh_key.with_extension("pub")).unwrap();
    let public = public.trim();
    let secret = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: ssh\n  namespace: kafka\nstringData:\n  password: hunter2-typed-s3cr3t\n";
    write(
        &f.repo,
        "clusters/dev/secrets/ssh.yaml",
        &encrypt(
            &f.work,
            "ssh.yaml",
            secret,
            public,
            &["--encrypted-regex", "^stringData$"],
        ),
    );
    write(
        &f.repo,
        "clusters/dev/kustomization.yaml",
        "resources:\n  - secrets/ssh.yaml\n",
    );
    common::git(&f.repo, &["add", "."]);
    common::git(&f.repo, &["commit", "-qm", "ssh"]);
    let objs = objects(&render(&f, Some(&ssh_key)));
    assert_eq!(
        named(&objs, "ssh")["stringData"]["password"],
        "hunter2-typed-s3cr3t"
    );
}

#[test]
fn missing_wrong_and_unsupported_keys_are_errors_without_values() {
    let f = fixture();
    let out = render(&f, None);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("secrets/") && t.contains("SOPS-encrypted, but no age key was given"),
        "{t}"
    );
    assert_no_secret(&t);

    let out = render(&f, Some(&f.wrong_key));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains(&format!("SOPS-encrypted for {}; no identity of", f.recipient)),
        "{t}"
    );
    assert!(t.contains("wrong.txt matches"), "{t}");
    assert_no_secret(&t);

    // A post-quantum hybrid identity (age-keygen -pq): a clear "unsupported key type".
    let pq = f.work.join("pq.txt");
    let out = Command::new(&tools().age_keygen)
        .arg("-pq")
        .arg("-o")
        .arg(&pq)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = render(&f, Some(&pq));
    assert_eq!(out.status.code(), Some(2));
    let t = text(&out);
    assert!(
        t.contains("pq.txt: line 3: unsupported key type: post-quantum hybrid age identity"),
        "{t}"
    );
    let key_text = std::fs::read_to_string(&pq).unwrap();
    let secret_line = key_text
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY"))
        .unwrap();
    assert!(!t.contains(&secret_line[20..]), "the key leaked: {t}");
}

/// Replaces the first `ENC[...]` data after `marker` with other base64 of the same length.
fn tamper_after(text: &str, marker: &str) -> String {
    let at = text
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} not in {text}"));
    let data = at + text[at..].find("data:").unwrap() + 5;
    let mut bytes = text.as_bytes().to_vec();
    bytes[data] = if bytes[data] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

#[test]
fn tampered_values_macs_and_cleartext_are_errors_naming_the_file() {
    let f = fixture();
    let file = f.repo.join("clusters/dev/secrets/typed.yaml");
    let original = std::fs::read_to_string(&file).unwrap();
    let cases = [
        (
            tamper_after(&original, "password: ENC["),
            "SOPS value at \"stringData:password\" cannot be decrypted: authentication failed",
        ),
        (
            tamper_after(&original, "mac: ENC["),
            "SOPS MAC cannot be decrypted",
        ),
        // The namespace is not encrypted but MACed.
        (
            original.replacen("namespace: kafka", "namespace: other", 1),
            "SOPS MAC mismatch",
        ),
    ];
    for (i, (tampered, expected)) in cases.iter().enumerate() {
        std::fs::write(&file, tampered).unwrap();
        common::git(&f.repo, &["commit", "-qam", &format!("tamper {i}")]);
        for args in [
            &["render", "--rev", "HEAD", "clusters/dev"][..],
            &["diff", "--from", "HEAD~1", "--to", "HEAD"][..],
            &["validate", "--rev", "HEAD"][..],
        ] {
            let out = kgitops(&f.repo, Some(&f.key), args);
            let t = text(&out);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {t}");
            assert!(
                t.contains(&format!("clusters/dev/secrets/typed.yaml: {expected}")),
                "{args:?}: {t}"
            );
            assert_no_secret(&t);
        }
        std::fs::write(&file, &original).unwrap();
        common::git(&f.repo, &["commit", "-qam", &format!("restore {i}")]);
    }
}

#[test]
fn diff_and_validate_never_print_a_decrypted_value() {
    let f = fixture();
    // Without the key, an object whose identity is encrypted (sops' default: every value) cannot
    // be rendered: a clear error, without values.
    let out = kgitops(&f.repo, None, &["diff", "--from", "HEAD", "--to", "HEAD"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(
        t.contains("clusters/dev/secrets/default.yaml: document 1: its apiVersion, kind or metadata are SOPS-encrypted"),
        "{t}"
    );
    assert_no_secret(&t);
    without_default(&f);
    // Change one value with `sops set`: the other values keep their ciphertext.
    let file = f.repo.join("clusters/dev/secrets/typed.yaml");
    let out = Command::new(&tools().sops)
        .current_dir(&f.repo)
        .args(["set"])
        .arg(&file)
        .args(["[\"stringData\"][\"password\"]", "\"changed-s3cr3t-value\""])
        .env("SOPS_AGE_KEY_FILE", &f.key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sops set: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    common::git(&f.repo, &["commit", "-qam", "rotate the password"]);

    for key in [Some(f.key.as_path()), None] {
        for output in ["text", "markdown", "json"] {
            let out = kgitops(
                &f.repo,
                key,
                &["diff", "--from", "HEAD~1", "--to", "HEAD", "--output", output],
            );
            let t = text(&out);
            assert_eq!(out.status.code(), Some(1), "key {key:?} {output}: {t}");
            assert!(t.contains("Secret/kafka/typed") || t.contains("typed"), "{t}");
            assert_no_secret(&t);
            if key.is_none() {
                // Without the key: which keys' ciphertexts changed, never values.
                assert!(t.contains("encrypted, keys changed: password"), "{output}: {t}");
            }
        }
        let out = kgitops(&f.repo, key, &["validate", "--rev", "HEAD"]);
        assert_no_secret(&text(&out));
        let out = kgitops(
            &f.repo,
            key,
            &["validate", "--from", "HEAD~1", "--to", "HEAD", "--output", "json"],
        );
        assert_no_secret(&text(&out));
    }
}

/// Drops the fully encrypted `default.yaml` (unreadable without the key) from the overlay.
fn without_default(f: &Fixture) {
    write(
        &f.repo,
        "clusters/dev/kustomization.yaml",
        &KUSTOMIZATION.replace("  - secrets/default.yaml\n", ""),
    );
    common::git(&f.repo, &["rm", "-q", "clusters/dev/secrets/default.yaml"]);
    common::git(&f.repo, &["commit", "-qam", "no fully encrypted file"]);
}

#[test]
fn a_plain_secret_under_an_encrypted_path_is_a_validate_error() {
    let f = fixture();
    without_default(&f);
    let out = kgitops(&f.repo, Some(&f.key), &["validate", "--rev", "HEAD"]);
    let t = text(&out);
    assert!(!t.contains("sops-plaintext-secret"), "{t}");

    write(
        &f.repo,
        "clusters/dev/secrets/leaked.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: leaked\n  namespace: kafka\nstringData:\n  password: hunter2-typed-s3cr3t\n",
    );
    // A plain ConfigMap under the same path is not a finding: only Secrets must be encrypted.
    write(
        &f.repo,
        "clusters/dev/secrets/settings.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n",
    );
    common::git(&f.repo, &["add", "."]);
    common::git(&f.repo, &["commit", "-qm", "plain secret"]);
    for key in [Some(f.key.as_path()), None] {
        let out = kgitops(&f.repo, key, &["validate", "--rev", "HEAD", "--output", "json"]);
        let t = text(&out);
        assert_eq!(out.status.code(), Some(1), "{t}");
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        let hits: Vec<&Value> = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["rule"] == "sops-plaintext-secret")
            .collect();
        assert_eq!(hits.len(), 1, "{t}");
        assert_eq!(hits[0]["object"], "clusters/dev/secrets/leaked.yaml");
        assert_eq!(hits[0]["severity"], "error");
        assert_no_secret(&t);
    }
}

/// `apply` and `diff --live` on the real apiserver: the Secret is written decrypted, refused
/// without the key, and no output shows a value (a changed value is `(masked, ...)`).
#[tokio::test]
async fn apply_writes_the_decrypted_secret_and_prints_no_value() {
    use k8s_openapi::api::core::v1::Secret;
    let ns = common::namespace("sops").await;
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path();
    let (key, recipient) = keygen(work, "key.txt");
    let repo = work.join("repo");
    let secret = |password: &str| {
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: kafka-admin\n  namespace: {}\ntype: Opaque\n\
             stringData:\n  password: {password}\n",
            ns.name
        )
    };
    let encrypted = |password: &str| {
        encrypt(
            work,
            "secret.yaml",
            &secret(password),
            &recipient,
            &["--encrypted-regex", "^(data|stringData)$"],
        )
    };
    write(
        &repo,
        "clusters/dev/secret.yaml",
        &encrypted("hunter2-typed-s3cr3t"),
    );
    write(
        &repo,
        "clusters/dev/kustomization.yaml",
        "resources:\n  - secret.yaml\n",
    );
    let cp = common::control_plane();
    let key = key.to_str().unwrap();

    let out = cp.kgitops_in(&repo, &["apply", "--cluster", "dev"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("clusters/dev/secret.yaml: SOPS-encrypted, but no age key"),
        "{}",
        text(&out)
    );
    let secrets: kube::Api<Secret> = ns.api();
    assert!(secrets.get_opt("kafka-admin").await.unwrap().is_none());

    let out = cp.kgitops_in(&repo, &["apply", "--cluster", "dev", "--age-key-file", key]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_no_secret(&text(&out));
    let live = secrets.get("kafka-admin").await.unwrap();
    assert_eq!(live.data.unwrap()["password"].0, b"hunter2-typed-s3cr3t");

    let out = cp.kgitops_in(
        &repo,
        &["diff", "--live", "--cluster", "dev", "--age-key-file", key],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    write(
        &repo,
        "clusters/dev/secret.yaml",
        &encrypted("changed-s3cr3t-value"),
    );
    for output in ["text", "json", "markdown"] {
        let out = cp.kgitops_in(
            &repo,
            &[
                "diff",
                "--live",
                "--cluster",
                "dev",
                "--age-key-file",
                key,
                "--output",
                output,
            ],
        );
        let t = text(&out);
        assert_eq!(out.status.code(), Some(1), "{t}");
        assert!(t.contains("masked"), "{t}");
        assert_no_secret(&t);
    }
    let out = cp.kgitops_in(&repo, &["apply", "--cluster", "dev", "--age-key-file", key]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_no_secret(&text(&out));
    let live = secrets.get("kafka-admin").await.unwrap();
    assert_eq!(live.data.unwrap()["password"].0, b"changed-s3cr3t-value");
}

/// The daemon (in this process, configured as `kgitops run` is) with `decryption.age_key_file`,
/// a watched directory as source and the real apiserver: the encrypted Secret is applied
/// decrypted; a tampered file is a failed reconcile naming the file; `/status` and `/metrics`
/// never show a value.
#[tokio::test]
async fn the_daemon_decrypts_with_its_configured_key_and_reports_without_values() {
    use k8s_openapi::api::core::v1::Secret;
    let ns = common::namespace("sops-daemon").await;
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path();
    let (_key, recipient) = keygen(work, "keys.txt");
    let repo = work.join("repo");
    let secret = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: kafka-admin\n  namespace: {}\ntype: Opaque\n\
         stringData:\n  password: hunter2-typed-s3cr3t\n",
        ns.name
    );
    let encrypted = encrypt(
        work,
        "secret.yaml",
        &secret,
        &recipient,
        &["--encrypted-regex", "^(data|stringData)$"],
    );
    write(&repo, "clusters/dev/secret.yaml", &encrypted);
    write(
        &repo,
        "clusters/dev/kustomization.yaml",
        "resources:\n  - secret.yaml\n",
    );
    let text = format!(
        "source:\n  path: repo\nclusters:\n  - name: dev\n    kubeconfig: {}\nserver:\n  listen: 127.0.0.1:0\n  \
         status_listen: 127.0.0.1:0\ncache_dir: {}\ndecryption:\n  age_key_file: keys.txt\n",
        common::control_plane().kubeconfig().display(),
        work.join("cache").display()
    );
    let config = kgitops::daemon::Config::parse(&text, &work.join("kgitops.yaml"), work).unwrap();
    // What `kgitops run` does with the section (src/cli/run.rs).
    let decryption = config.decryption.as_ref().unwrap().load().unwrap().unwrap();
    kgitops::render::sops::keys::set(decryption);
    let daemon = kgitops::daemon::Daemon::bind(config).await.unwrap();
    let addr = daemon.status_addr();
    let token = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(daemon.run(token.clone()));

    let secrets: kube::Api<Secret> = ns.api();
    daemon_poll::eventually_within(
        "the decrypted Secret applied",
        std::time::Duration::from_millis(200),
        std::time::Duration::from_secs(60),
        || async {
            match secrets.get_opt("kafka-admin").await {
                Ok(Some(s))
                    if s.data
                        .as_ref()
                        .is_some_and(|d| d["password"].0 == b"hunter2-typed-s3cr3t") =>
                {
                    Ok(())
                }
                other => Err(format!("{:?}", other.map(|s| s.map(|s| s.metadata.name)))),
            }
        },
    )
    .await;

    // Tampered (a MACed, unencrypted value changed): the reconcile fails naming the file.
    write(
        &repo,
        "clusters/dev/secret.yaml",
        &encrypted.replacen("name: kafka-admin", "name: kafka-admln", 1),
    );
    let failed = daemon_poll::eventually_within(
        "the tampered file reported",
        std::time::Duration::from_millis(200),
        std::time::Duration::from_secs(60),
        || async {
            let c = daemon_poll::cluster_status(addr).await;
            let message = c["last_result"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if message.contains("clusters/dev/secret.yaml: SOPS MAC mismatch") {
                Ok(c)
            } else {
                Err(c.to_string())
            }
        },
    )
    .await;
    assert_eq!(failed["last_result"]["result"], "failed", "{failed:#}");
    for path in ["/status", "/metrics", "/status?format=html"] {
        let body = daemon_poll::get_ok(addr, path).await;
        assert_no_secret(&body);
    }
    token.cancel();
    tokio::time::timeout(std::time::Duration::from_secs(10), task)
        .await
        .expect("the daemon stops")
        .unwrap()
        .unwrap();
}

/// The benchmark's scenario (benches/render/sops.rs) as a test: 100 Secrets with multi-line values
/// render identically plain and encrypted; the time each took is printed (a debug build: the
/// figure that counts is the benchmark's, in release).
#[test]
fn a_hundred_encrypted_secrets_render_as_their_plain_text() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path();
    let (key, recipient) = keygen(work, "key.txt");
    let repo = work.join("repo");
    let mut kustomization = String::from("resources:\n");
    for i in 0..100 {
        let name = format!("secret-{i:03}.yaml");
        let text = format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: app-{i:03}\n  namespace: kafka\ntype: Opaque\n\
             stringData:\n  password: p4ssw0rd-{i}\n  config.properties: |\n    sasl.mechanism=SCRAM-SHA-512\n    \
             security.protocol=SASL_SSL\n"
        );
        write(&repo, &format!("plain/{name}"), &text);
        let enc = encrypt(
            work,
            &name,
            &text,
            &recipient,
            &["--encrypted-regex", "^(data|stringData)$"],
        );
        write(&repo, &format!("encrypted/{name}"), &enc);
        kustomization.push_str(&format!("  - {name}\n"));
    }
    write(&repo, "plain/kustomization.yaml", &kustomization);
    write(&repo, "encrypted/kustomization.yaml", &kustomization);
    let run = |dir: &str| {
        let start = std::time::Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_kgitops"))
            .arg("render")
            .arg(repo.join(dir))
            .arg("--age-key-file")
            .arg(&key)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        (out.stdout, start.elapsed())
    };
    let (plain, plain_time) = run("plain");
    let (encrypted, encrypted_time) = run("encrypted");
    assert_eq!(
        String::from_utf8(encrypted).unwrap(),
        String::from_utf8(plain).unwrap()
    );
    println!("100 Secrets, debug build, CLI process: plain {plain_time:?}, encrypted {encrypted_time:?}");
}
