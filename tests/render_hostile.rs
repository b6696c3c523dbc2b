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
