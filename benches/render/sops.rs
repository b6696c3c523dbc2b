//! `sops` (issue 17 part 1): one overlay of 100 Secrets rendered by the library in-process, plain
//! and SOPS-encrypted (the same Secrets, `--encrypted-regex '^(data|stringData)$'`, one age
//! recipient, encrypted by the real sops of `tests/tools/build-sops`), both medians printed with
//! the difference: what decryption adds to a render (target: < 20 ms).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use kgitops::render::render;
use kgitops::render::sops::{Decryption, Keys, keys};
use kgitops::source::{DirTree, TreePath};

use crate::measure::{fmt_duration, time_median};

const SECRETS: usize = 100;
const TARGET_MS: f64 = 20.0;

fn tool(script: &str) -> Result<PathBuf> {
    let out = Command::new(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/tools")
            .join(script),
    )
    .output()
    .with_context(|| format!("running tests/tools/{script}"))?;
    if !out.status.success() {
        bail!(
            "tests/tools/{script} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(PathBuf::from(String::from_utf8(out.stdout)?.trim()))
}

/// Writes `<dir>/plain` and `<dir>/encrypted` (each a kustomization of the same 100 Secrets) and
/// the age key; returns the key file.
fn fixture(dir: &Path) -> Result<PathBuf> {
    let sops = tool("build-sops")?;
    let age_dir = tool("build-age")?;
    fs::create_dir_all(dir)?;
    let key = dir.join("key.txt");
    let out = Command::new(age_dir.join("age-keygen"))
        .arg("-o")
        .arg(&key)
        .output()?;
    if !out.status.success() {
        bail!("age-keygen: {}", String::from_utf8_lossy(&out.stderr));
    }
    let recipient = fs::read_to_string(&key)?
        .lines()
        .find_map(|l| l.strip_prefix("# public key: ").map(str::to_string))
        .context("age-keygen wrote no public key")?;
    let mut kustomization = String::from("resources:\n");
    for side in ["plain", "encrypted"] {
        fs::create_dir_all(dir.join(side))?;
    }
    for i in 0..SECRETS {
        let name = format!("secret-{i:03}.yaml");
        let text = format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: app-{i:03}\n  namespace: kafka\n  labels:\n    app: app-{i:03}\n\
             type: Opaque\nstringData:\n  username: user-{i}\n  password: p4ssw0rd-{i}-0123456789abcdef\n  \
             url: https://kafka-{i}.example.com:9093\n  config.properties: |\n    sasl.mechanism=SCRAM-SHA-512\n    \
             security.protocol=SASL_SSL\n"
        );
        fs::write(dir.join("plain").join(&name), &text)?;
        let out = Command::new(&sops)
            .current_dir(dir.join("plain"))
            .args([
                "encrypt",
                "--age",
                &recipient,
                "--encrypted-regex",
                "^(data|stringData)$",
                &name,
            ])
            .output()?;
        if !out.status.success() {
            bail!("sops encrypt: {}", String::from_utf8_lossy(&out.stderr));
        }
        fs::write(dir.join("encrypted").join(&name), out.stdout)?;
        kustomization.push_str(&format!("  - {name}\n"));
    }
    for side in ["plain", "encrypted"] {
        fs::write(dir.join(side).join("kustomization.yaml"), &kustomization)?;
    }
    Ok(key)
}

pub fn bench_sops(dir: &Path, quick: bool) -> Result<()> {
    println!(
        "sops (issue 17): an overlay of {SECRETS} Secrets, plain and SOPS-encrypted (age), library in-process"
    );
    let key = fixture(dir)?;
    keys::set(Decryption::Keys(Arc::new(Keys::from_file(&key)?)));
    let tree = DirTree::open(dir)?;
    let (plain_dir, enc_dir) = (TreePath::new("plain")?, TreePath::new("encrypted")?);
    let plain_objects = render(&tree, &plain_dir)?;
    let enc_objects = render(&tree, &enc_dir)?;
    if plain_objects != enc_objects {
        bail!("the decrypted render differs from the plain one");
    }
    let runs = if quick { 3 } else { 30 };
    let plain = time_median(runs, || Ok(render(&tree, &plain_dir)?))?;
    let encrypted = time_median(runs, || Ok(render(&tree, &enc_dir)?))?;
    let added = encrypted.wall.saturating_sub(plain.wall);
    println!(
        "    plain       {}  (cpu {})   median of {runs}",
        fmt_duration(plain.wall),
        fmt_duration(plain.cpu)
    );
    println!(
        "    encrypted   {}  (cpu {})   median of {runs}",
        fmt_duration(encrypted.wall),
        fmt_duration(encrypted.cpu)
    );
    let added_ms = added.as_secs_f64() * 1e3;
    println!(
        "    decryption adds {} ({:.2} ms per Secret); target < {TARGET_MS} ms: {}\n",
        fmt_duration(added),
        added_ms / SECRETS as f64,
        if added_ms < TARGET_MS { "met" } else { "NOT met" }
    );
    Ok(())
}
