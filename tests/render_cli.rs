//! `kgitops render` end to end: a directory, a repository work tree, and git revisions read from
//! objects (never the work tree); exit codes and error messages.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

#[path = "support/helm_binary.rs"]
mod helm_binary;

fn kgitops(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kgitops"))
        .args(args)
        .output()
        .expect("run kgitops")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn write(root: &Path, rel: &str, content: &str) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    fs::write(path, content).expect("write");
}

fn commit_all(repo: &git2::Repository, message: &str) {
    let mut index = repo.index().expect("index");
    index
        .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
        .expect("add");
    index.write().expect("write index");
    let tree = repo
        .find_tree(index.write_tree().expect("tree"))
        .expect("find tree");
    let sig = git2::Signature::now("test", "test@example.com").expect("signature");
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
        .expect("commit");
}

fn configmap(value: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  version: {value}\n")
}

#[test]
fn renders_directories_work_trees_and_git_revisions() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    let repo = git2::Repository::init(root).expect("init");
    write(root, "base/kustomization.yaml", "resources: [cm.yaml]\n");
    write(root, "base/cm.yaml", &configmap("one"));
    write(
        root,
        "clusters/dev/kustomization.yaml",
        "resources: [../../base]\nnamespace: dev\n",
    );
    commit_all(&repo, "one");
    write(root, "base/cm.yaml", &configmap("two"));
    commit_all(&repo, "two");
    // Uncommitted: only the work tree sees it.
    write(root, "base/cm.yaml", &configmap("dirty"));

    let repo_arg = root.to_str().expect("utf-8 path");
    let expect = |args: &[&str], version: &str| {
        let out = kgitops(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        let text = stdout(&out);
        assert!(
            text.contains(&format!("version: {version}\n")),
            "{args:?}:\n{text}"
        );
        assert!(text.contains("namespace: dev\n"), "{args:?}:\n{text}");
    };
    expect(
        &["render", "--repo", repo_arg, "--rev", "HEAD", "clusters/dev"],
        "two",
    );
    expect(
        &["render", "--repo", repo_arg, "--rev", "HEAD~1", "clusters/dev"],
        "one",
    );
    expect(&["render", "--repo", repo_arg, "clusters/dev"], "dirty");
    let dev = root.join("clusters/dev");
    expect(&["render", dev.to_str().expect("utf-8")], "dirty");
}

#[test]
fn errors_exit_2_and_name_the_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    git2::Repository::init(root).expect("init");
    write(
        root,
        "app/kustomization.yaml",
        "resources: [cm.yaml]\nnamePrefx: x-\n",
    );
    let out = kgitops(&["render", "--repo", root.to_str().expect("utf-8"), "app"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.starts_with("error: app/kustomization.yaml: ") && err.contains("unknown field `namePrefx`"),
        "{err}"
    );
    assert!(stdout(&out).is_empty(), "nothing partial on stdout");

    let out = kgitops(&[
        "render",
        "--repo",
        root.to_str().expect("utf-8"),
        "--rev",
        "no-such-rev",
        "app",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no-such-rev"), "{}", stderr(&out));

    let out = kgitops(&["render", "--rev", "HEAD", "app"]);
    assert_eq!(out.status.code(), Some(2), "--rev needs --repo");
}

/// A Helm chart kept in the repository, rendered from a git revision with --enable-helm: the chart
/// and values come from git objects (an uncommitted change in the work tree is not seen), values
/// inline override the chart's, the kustomization's namespace goes to helm.
#[test]
fn helm_charts_render_from_git_objects_with_enable_helm() {
    let helm = helm_binary::helm_binary().unwrap_or_else(|e| panic!("{e}"));
    let helm = helm.to_str().expect("UTF-8 path");
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    let repo = git2::Repository::init(root).expect("init");
    write(
        root,
        "apps/greeter/kustomization.yaml",
        "namespace: greet\nhelmCharts:\n- name: greeter\n  releaseName: hi\n  valuesInline:\n    who: git\n",
    );
    write(
        root,
        "apps/greeter/charts/greeter/Chart.yaml",
        "apiVersion: v2\nname: greeter\nversion: 0.1.0\n",
    );
    write(
        root,
        "apps/greeter/charts/greeter/values.yaml",
        "who: nobody\ngreeting: hello\n",
    );
    write(
        root,
        "apps/greeter/charts/greeter/templates/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-greeting\n  namespace: {{ .Release.Namespace }}\ndata:\n  text: {{ .Values.greeting }} {{ .Values.who }}\n",
    );
    commit_all(&repo, "chart");
    write(
        root,
        "apps/greeter/charts/greeter/values.yaml",
        "who: worktree\ngreeting: bye\n",
    );
    let repo_arg = root.to_str().expect("UTF-8 path");

    let out = kgitops(&[
        "render",
        "--enable-helm",
        "--helm-command",
        helm,
        "--repo",
        repo_arg,
        "--rev",
        "HEAD",
        "apps/greeter",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "apiVersion: v1\ndata:\n  text: hello git\nkind: ConfigMap\nmetadata:\n  name: hi-greeting\n  namespace: greet\n"
    );

    let off = kgitops(&["render", "--repo", repo_arg, "--rev", "HEAD", "apps/greeter"]);
    assert_eq!(off.status.code(), Some(2));
    assert!(
        stderr(&off).contains("apps/greeter/kustomization.yaml: helmCharts \"greeter\": Helm charts are rendered only when enabled: pass --enable-helm"),
        "{}",
        stderr(&off)
    );

    let missing = kgitops(&[
        "render",
        "--enable-helm",
        "--helm-command",
        "/nonexistent/helm",
        "--repo",
        repo_arg,
        "apps/greeter",
    ]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("cannot run the helm command \"/nonexistent/helm\"")
            && stderr(&missing).contains("--helm-command PATH"),
        "{}",
        stderr(&missing)
    );

    // A failing template: helm's own message, never the values.
    write(
        root,
        "apps/greeter/charts/greeter/templates/bad.yaml",
        "{{ required \"set secretValue\" .Values.secretValue }}\n",
    );
    write(
        root,
        "apps/greeter/charts/greeter/values.yaml",
        "who: x\ngreeting: y\npassword: hunter2\n",
    );
    let failed = kgitops(&[
        "render",
        "--enable-helm",
        "--helm-command",
        helm,
        "--repo",
        repo_arg,
        "apps/greeter",
    ]);
    assert_eq!(failed.status.code(), Some(2));
    let err = stderr(&failed);
    assert!(
        err.contains("set secretValue") && !err.contains("hunter2"),
        "{err}"
    );
}

/// A conformance case of `tests/render/`, on disk.
fn case(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/render")
        .join(name)
}

#[test]
fn kustomize_warnings_go_to_stderr_and_the_objects_to_stdout() {
    let dir = case("vars-basic");
    let out = kgitops(&["render", dir.to_str().expect("UTF-8 path")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let expected = fs::read_to_string(dir.join("expected.yaml")).expect("expected.yaml");
    assert_eq!(stdout(&out), expected);
    // kustomize's own stderr (deprecated `vars`, a map-valued var, unused vars), line for line.
    let warnings = fs::read_to_string(dir.join("expected-stderr.txt")).expect("expected-stderr.txt");
    assert_eq!(stderr(&out), warnings);

    // Warnings found before a failure are printed before the error.
    let tmp = tempfile::tempdir().expect("tempdir");
    write(
        tmp.path(),
        "k/kustomization.yaml",
        "commonLabels: {a: b}\nresources:\n- missing.yaml\n",
    );
    let out = kgitops(&["render", tmp.path().join("k").to_str().expect("UTF-8 path")]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.starts_with("# Warning: 'commonLabels' is deprecated.") && err.contains("missing.yaml"),
        "{err}"
    );
}

#[test]
fn helm_flags_and_replacements_into_embedded_yaml_render_like_kustomize() {
    let helm = helm_binary::helm_binary().unwrap_or_else(|e| panic!("{e}"));
    let dir = case("helm-cli-flags");
    let flags = fs::read_to_string(dir.join("enable-helm")).expect("enable-helm");
    let mut args = vec![
        "render",
        "--enable-helm",
        "--helm-command",
        helm.to_str().expect("UTF-8 path"),
    ];
    args.extend(flags.lines().filter(|l| !l.is_empty()));
    args.push(dir.to_str().expect("UTF-8 path"));
    let out = kgitops(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        fs::read_to_string(dir.join("expected.yaml")).expect("expected.yaml")
    );

    let dir = case("replacements-structured-yaml");
    let out = kgitops(&["render", dir.to_str().expect("UTF-8 path")]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        fs::read_to_string(dir.join("expected.yaml")).expect("expected.yaml")
    );
}
