//! Hostile and oversized inputs: each must end in a clear error naming the file (or render
//! correctly), never a hang, a stack overflow or running out of memory. Inputs are generated into
//! temporary directories, since they are too large or too odd to keep as fixtures.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use kgitops::manifest::yaml::Limits;
use kgitops::render::load::MAX_KUSTOMIZATION_DEPTH;
use kgitops::render::{RenderError, render, render_with_limits};
use kgitops::source::{DirTree, TreePath};

fn write(dir: &Path, rel: &str, content: &str) {
    let path = dir.join(rel);
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    fs::write(path, content).expect("write");
}

fn render_dir(root: &Path, dir: &str) -> Result<Vec<serde_json::Value>, RenderError> {
    let tree = DirTree::open(root).expect("open tree");
    render(&tree, &TreePath::new(dir).expect("path"))
}

#[test]
fn alias_bomb_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut bomb = String::from(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: lol\na0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n",
    );
    for i in 1..10 {
        let prev = format!("*a{}", i - 1);
        let _ = writeln!(bomb, "a{i}: &a{i} [{}]", vec![prev; 9].join(", "));
    }
    let _ = writeln!(bomb, "data: {{bomb: *a9}}");
    write(tmp.path(), "kustomization.yaml", "resources: [bomb.yaml]\n");
    write(tmp.path(), "bomb.yaml", &bomb);
    let err = render_dir(tmp.path(), "")
        .expect_err("billion laughs must be refused")
        .to_string();
    assert!(err.starts_with("bomb.yaml: "), "{err}");
}

#[test]
fn deep_nesting_is_refused_without_overflowing_the_stack() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let depth = 100_000;
    let deep = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: deep\ndata: {}{}\n",
        "{a: ".repeat(depth),
        "}".repeat(depth)
    );
    write(tmp.path(), "kustomization.yaml", "resources: [deep.yaml]\n");
    write(tmp.path(), "deep.yaml", &deep);
    let err = render_dir(tmp.path(), "")
        .expect_err("100k levels must be refused")
        .to_string();
    assert!(err.starts_with("deep.yaml: "), "{err}");

    // The kustomization file itself goes through the same limits.
    write(
        tmp.path(),
        "k2/kustomization.yaml",
        &format!("resources: {}{}\n", "[".repeat(depth), "]".repeat(depth)),
    );
    let err = render_dir(tmp.path(), "k2")
        .expect_err("deep kustomization")
        .to_string();
    assert!(err.starts_with("k2/kustomization.yaml: "), "{err}");
}

#[test]
fn nested_kustomizations_are_limited() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let levels = MAX_KUSTOMIZATION_DEPTH + 20;
    for i in 0..levels {
        write(
            tmp.path(),
            &format!("k{i}/kustomization.yaml"),
            &format!("resources: [../k{}]\n", i + 1),
        );
    }
    write(
        tmp.path(),
        &format!("k{levels}/kustomization.yaml"),
        "resources: [cm.yaml]\n",
    );
    write(
        tmp.path(),
        &format!("k{levels}/cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: leaf}\n",
    );
    let err = render_dir(tmp.path(), "k0").expect_err("too deep").to_string();
    assert!(err.contains("nested more than"), "{err}");
    // Just under the limit renders (on a test thread's small stack).
    let start = levels - (MAX_KUSTOMIZATION_DEPTH - 1);
    let objs = render_dir(tmp.path(), &format!("k{start}")).expect("renders under the limit");
    assert_eq!(objs.len(), 1);
}

#[test]
fn oversized_files_are_refused_with_the_limit() {
    let tmp = tempfile::tempdir().expect("tempdir");
    write(tmp.path(), "kustomization.yaml", "resources: [big.yaml]\n");
    write(
        tmp.path(),
        "big.yaml",
        &format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: big}}\ndata: {{k: {}}}\n",
            "x".repeat(5000)
        ),
    );
    let tree = DirTree::open(tmp.path()).expect("open");
    let limits = Limits {
        max_bytes: 4096,
        ..Limits::DEFAULT
    };
    let err = render_with_limits(&tree, &TreePath::root(), limits)
        .expect_err("over the size limit")
        .to_string();
    assert!(err.starts_with("big.yaml: ") && err.contains("4096"), "{err}");
}

#[test]
fn symlink_loops_and_self_references_are_errors() {
    let tmp = tempfile::tempdir().expect("tempdir");
    write(tmp.path(), "kustomization.yaml", "resources: [loop.yaml]\n");
    std::os::unix::fs::symlink("loop.yaml", tmp.path().join("loop.yaml")).expect("symlink");
    let err = render_dir(tmp.path(), "").expect_err("symlink loop").to_string();
    assert!(err.contains("loop.yaml"), "{err}");

    write(tmp.path(), "self/kustomization.yaml", "resources: [.]\n");
    let err = render_dir(tmp.path(), "self")
        .expect_err("self reference")
        .to_string();
    assert!(err.contains("cycle"), "{err}");
}

#[test]
fn twenty_thousand_objects_render() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut resources = String::from("resources:\n");
    for f in 0..20 {
        let mut docs = Vec::new();
        for i in 0..1000 {
            let n = f * 1000 + i;
            docs.push(format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d{n}\nspec:\n  template:\n    spec:\n      \
                 containers:\n      - name: c\n        image: nginx\n        envFrom:\n        - configMapRef:\n            \
                 name: settings\n"
            ));
        }
        write(tmp.path(), &format!("base/f{f}.yaml"), &docs.join("---\n"));
        let _ = writeln!(resources, "- f{f}.yaml");
    }
    write(tmp.path(), "base/kustomization.yaml", &resources);
    write(
        tmp.path(),
        "overlay/kustomization.yaml",
        "resources: [../base]\nnamespace: big\nnamePrefix: p-\nlabels:\n- pairs: {team: kafka}\n\
         images:\n- name: nginx\n  newTag: '1.27'\nconfigMapGenerator:\n- name: settings\n  literals: [a=b]\n",
    );
    let objs = render_dir(tmp.path(), "overlay").expect("renders");
    assert_eq!(objs.len(), 20_001);
    let settings = objs[0]["metadata"]["name"].as_str().expect("name").to_string();
    assert!(settings.starts_with("p-settings-"), "{settings}");
    let d = &objs[1];
    assert_eq!(d["metadata"]["name"], "p-d0");
    assert_eq!(d["metadata"]["namespace"], "big");
    let container = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "nginx:1.27");
    assert_eq!(container["envFrom"][0]["configMapRef"]["name"], settings.as_str());
}

#[test]
fn symlinks_out_of_the_kustomization_directory_are_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    write(
        tmp.path(),
        "secret/creds.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\n",
    );
    write(
        tmp.path(),
        "app/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n",
    );
    write(
        tmp.path(),
        "app/kustomization.yaml",
        "resources:\n- cm.yaml\n- leak.yaml\n",
    );
    std::os::unix::fs::symlink("../secret/creds.yaml", tmp.path().join("app/leak.yaml")).expect("symlink");
    let err = render_dir(tmp.path(), "app")
        .expect_err("symlink out of app/")
        .to_string();
    assert!(
        err.contains("app/leak.yaml (a symlink to secret/creds.yaml) is not in or below app"),
        "{err}"
    );
    // A symlink that stays inside the kustomization directory is fine.
    std::fs::remove_file(tmp.path().join("app/leak.yaml")).expect("rm");
    std::os::unix::fs::symlink("cm.yaml", tmp.path().join("app/leak.yaml")).expect("symlink");
    write(tmp.path(), "app/kustomization.yaml", "resources:\n- leak.yaml\n");
    assert_eq!(render_dir(tmp.path(), "app").expect("renders").len(), 1);
}

// --- Hostile git objects: trees and blobs built with git2 directly, read through `GitTree`. ---

const MODE_BLOB: i32 = 0o100644;
const MODE_TREE: i32 = 0o040000;

/// A tree object of `entries` (name, id, mode).
fn tree_of(repo: &git2::Repository, entries: &[(String, git2::Oid, i32)]) -> git2::Oid {
    let mut builder = repo.treebuilder(None).expect("treebuilder");
    for (name, oid, mode) in entries {
        builder.insert(name, *oid, *mode).expect("insert");
    }
    builder.write().expect("write tree")
}

/// A tree of `n` entries `<prefix>0..n`, all pointing to `oid` with `mode`.
fn fan_out(repo: &git2::Repository, prefix: &str, n: usize, oid: git2::Oid, mode: i32) -> git2::Oid {
    let entries: Vec<(String, git2::Oid, i32)> =
        (0..n).map(|i| (format!("{prefix}{i}"), oid, mode)).collect();
    tree_of(repo, &entries)
}

/// Commits a root tree holding `clusters/dev` = `dev` and the other `extra` root entries.
fn commit_root(repo: &git2::Repository, dev: git2::Oid, extra: &[(String, git2::Oid, i32)]) -> String {
    let clusters = tree_of(repo, &[("dev".into(), dev, MODE_TREE)]);
    let mut root = vec![("clusters".to_string(), clusters, MODE_TREE)];
    root.extend_from_slice(extra);
    let tree = repo.find_tree(tree_of(repo, &root)).expect("root tree");
    let sig = git2::Signature::now("t", "t@kgitops.invalid").expect("signature");
    repo.commit(None, &sig, &sig, "hostile", &tree, &[])
        .expect("commit")
        .to_string()
}

/// `clusters/dev`: a kustomization with `kustomization` as its text, one ConfigMap and `extra`.
fn dev_tree(repo: &git2::Repository, kustomization: &str, extra: &[(String, git2::Oid, i32)]) -> git2::Oid {
    let kust = repo.blob(kustomization.as_bytes()).expect("blob");
    let cm = repo
        .blob(b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\n")
        .expect("blob");
    let mut entries = vec![
        ("kustomization.yaml".to_string(), kust, MODE_BLOB),
        ("cm.yaml".to_string(), cm, MODE_BLOB),
    ];
    entries.extend_from_slice(extra);
    tree_of(repo, &entries)
}

#[test]
fn a_tree_bomb_beside_the_overlay_is_never_read() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = git2::Repository::init_bare(tmp.path()).expect("init");
    // 10^10 paths in a few hundred KB: every level shares one subtree. Walking it never ends.
    let blob = repo.blob(b"x").expect("blob");
    let mut level = fan_out(&repo, "f", 1000, blob, MODE_BLOB);
    for _ in 0..2 {
        level = fan_out(&repo, "d", 1000, level, MODE_TREE);
    }
    let bomb = fan_out(&repo, "d", 10, level, MODE_TREE);
    let dev = dev_tree(&repo, "resources: [cm.yaml]\n", &[]);
    let sha = commit_root(&repo, dev, &[("bomb".into(), bomb, MODE_TREE)]);

    let started = std::time::Instant::now();
    let tree = kgitops::source::GitTree::open(tmp.path(), &sha).expect("open");
    let objects = kgitops::render::render_cluster(&tree, "dev").expect("renders");
    assert_eq!(objects.len(), 1);
    // Only the root, clusters/ and clusters/dev were read (2 + 1 + 2 entries).
    assert_eq!(tree.entries_read(), 5);
    // Well under a second on any machine; the bound is generous for a loaded one.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_directory_over_the_tree_entry_limit_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = git2::Repository::init_bare(tmp.path()).expect("init");
    let blob = repo.blob(b"x").expect("blob");
    let many: Vec<(String, git2::Oid, i32)> = (0..2000).map(|i| (format!("f{i}"), blob, MODE_BLOB)).collect();
    let dev = dev_tree(&repo, "resources: [cm.yaml]\n", &many);
    let sha = commit_root(&repo, dev, &[]);
    let git = kgitops::source::GitRepo::open(tmp.path())
        .expect("open")
        .with_max_tree_entries(1000);
    let tree = git.tree(&sha).expect("tree");
    let err = kgitops::render::render_cluster(&tree, "dev")
        .expect_err("clusters/dev has 2002 entries")
        .to_string();
    assert!(
        err.starts_with("clusters/dev: reading this directory (2002 entries)")
            && err.contains("limit of 1000"),
        "{err}"
    );
    // Under the limit the same overlay renders.
    let git = kgitops::source::GitRepo::open(tmp.path())
        .expect("open")
        .with_max_tree_entries(3000);
    let objects = kgitops::render::render_cluster(&git.tree(&sha).expect("tree"), "dev").expect("renders");
    assert_eq!(objects.len(), 1);
}

/// Runs the kgitops binary and returns its output and peak resident memory in bytes (`wait4`).
#[allow(unsafe_code)] // each unsafe block below says why it is sound (SAFETY)
fn kgitops_with_peak_rss(args: &[&str]) -> (std::process::ExitStatus, String, u64) {
    // Reaped by wait4 below, which std's `Child` cannot do (it gives no rusage).
    #[allow(clippy::zombie_processes)]
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_kgitops"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run kgitops");
    let pid = libc::pid_t::try_from(child.id()).expect("pid");
    let mut stderr = child.stderr.expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        text
    });
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; all-zero is a valid value for wait4 to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: valid pointers to locals; `pid` is our own child, not yet reaped.
        let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if waited == pid {
            break;
        }
        let err = std::io::Error::last_os_error();
        assert_eq!(err.kind(), std::io::ErrorKind::Interrupted, "wait4: {err}");
    }
    let text = reader.join().expect("stderr reader");
    let status = std::os::unix::process::ExitStatusExt::from_raw(status);
    // Linux reports ru_maxrss in KiB.
    (status, text, u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024)
}

/// Bytes of zeros written to a blob in 1 MiB steps (the test never holds them at once).
fn zero_blob(repo: &git2::Repository, size: usize) -> git2::Oid {
    let mut writer = repo.blob_writer(None).expect("blob writer");
    let chunk = vec![b'\n'; 1 << 20];
    for _ in 0..size / chunk.len() {
        std::io::Write::write_all(&mut writer, &chunk).expect("write");
    }
    writer.commit().expect("commit blob")
}

#[test]
fn a_huge_file_is_refused_by_its_size_before_it_is_read() {
    const HUGE: usize = 200 << 20;
    const PEAK_BOUND: u64 = 100 << 20;
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = git2::Repository::init_bare(tmp.path().join("repo.git")).expect("init");
    let big = zero_blob(&repo, HUGE);
    let dev = dev_tree(
        &repo,
        "resources: [cm.yaml, big.yaml]\n",
        &[("big.yaml".into(), big, MODE_BLOB)],
    );
    let sha = commit_root(&repo, dev, &[]);
    let repo_dir = tmp.path().join("repo.git");
    let (status, stderr, peak) = kgitops_with_peak_rss(&[
        "render",
        "--repo",
        repo_dir.to_str().expect("utf-8"),
        "--rev",
        &sha,
        "clusters/dev",
    ]);
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "clusters/dev/big.yaml: {HUGE} bytes is larger than the limit of 67108864 bytes"
        )),
        "{stderr}"
    );
    // Inflating the blob alone would take 200 MiB.
    assert!(peak < PEAK_BOUND, "peak RSS {} MiB reading from git", peak >> 20);

    // The same from a working tree: the size comes from the file's metadata (a sparse file, so
    // the test costs no disk).
    write(tmp.path(), "work/kustomization.yaml", "resources: [big.yaml]\n");
    let file = fs::File::create(tmp.path().join("work/big.yaml")).expect("create");
    file.set_len(HUGE as u64).expect("sparse file");
    let work = tmp.path().join("work");
    let (status, stderr, peak) = kgitops_with_peak_rss(&["render", work.to_str().expect("utf-8")]);
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("big.yaml: 209715200 bytes is larger than the limit"),
        "{stderr}"
    );
    assert!(
        peak < PEAK_BOUND,
        "peak RSS {} MiB reading the work tree",
        peak >> 20
    );
}

#[test]
fn a_generator_reading_one_file_many_times_hits_the_render_budget() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // 1 MiB read 40 times: 40 MiB held by one render, past a 16 MiB budget.
    write(tmp.path(), "app/data.txt", &"x".repeat(1 << 20));
    let mut kust = String::from("configMapGenerator:\n");
    for i in 0..40 {
        let _ = writeln!(kust, "- name: c{i}\n  files: [data.txt]");
    }
    write(tmp.path(), "app/kustomization.yaml", &kust);
    let app = tmp.path().join("app");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kgitops"))
        .args([
            "render",
            "--max-render-input",
            "16Mi",
            app.to_str().expect("utf-8"),
        ])
        .output()
        .expect("run kgitops");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("app/data.txt: reading it (1048576 bytes) would take this render's input past its budget of 16777216 bytes"),
        "{stderr}"
    );
    // The environment sets it too, and a budget that fits renders all 40.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kgitops"))
        .args(["render", app.to_str().expect("utf-8")])
        .env("KGITOPS_MAX_RENDER_INPUT", "41Mi")
        .output()
        .expect("run kgitops");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
