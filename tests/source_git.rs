//! `GitTree`: a revision's files read from git objects of real repositories made with the git CLI.

mod gitserver;

use std::sync::Arc;

use gitserver::{WorkRepo, git};
use kgitops::source::{EntryKind, FileTree, GitRepo, GitTree, SourceError, TreePath};

fn p(path: &str) -> TreePath {
    TreePath::new(path).unwrap()
}

fn text(tree: &dyn FileTree, path: &str) -> String {
    String::from_utf8(tree.read(&p(path), usize::MAX).unwrap()).unwrap()
}

/// A platform-like repository: base/, two overlays, one reaching base through a symlink.
fn platform(dir: &std::path::Path) -> WorkRepo {
    let work = WorkRepo::init(dir);
    work.write("base/kustomization.yaml", "resources: [kafka.yaml]\n")
        .write("base/kafka.yaml", "kind: Kafka\n")
        .write("base/prometheus/config.yaml", "scrape: []\n")
        .write("clusters/dev/kustomization.yaml", "resources: [../../base]\n")
        .write("clusters/prod/kustomization.yaml", "resources: [base]\n")
        .symlink("clusters/prod/base", "../../base")
        .write("README.md", "platform\n");
    work
}

#[test]
fn reads_files_and_nested_directories_at_a_revision() {
    let tmp = tempfile::tempdir().unwrap();
    let work = platform(tmp.path());
    let sha = work.commit("first");

    let tree = GitTree::open(&work.dir, "main").unwrap();
    assert_eq!(tree.commit(), sha);
    assert_eq!(tree.rev(), "main");
    assert_eq!(tree.describe(), format!("git main ({})", &sha[..12]));
    assert_eq!(
        tree.list(&TreePath::root()).unwrap(),
        ["README.md", "base", "clusters"]
    );
    assert_eq!(
        tree.list(&p("base")).unwrap(),
        ["kafka.yaml", "kustomization.yaml", "prometheus"]
    );
    assert_eq!(
        tree.list(&p("clusters/prod")).unwrap(),
        ["base", "kustomization.yaml"]
    );
    assert_eq!(tree.kind(&TreePath::root()).unwrap(), Some(EntryKind::Dir));
    assert_eq!(tree.kind(&p("base/prometheus")).unwrap(), Some(EntryKind::Dir));
    assert_eq!(tree.kind(&p("base/kafka.yaml")).unwrap(), Some(EntryKind::File));
    assert_eq!(tree.kind(&p("base/nope.yaml")).unwrap(), None);
    assert_eq!(tree.kind(&p("base/kafka.yaml/below")).unwrap(), None);
    assert_eq!(text(&tree, "base/prometheus/config.yaml"), "scrape: []\n");

    let err = tree.read(&p("base/nope.yaml"), usize::MAX).unwrap_err();
    assert!(matches!(err, SourceError::NotFound(_)), "{err}");
    assert_eq!(err.to_string(), "base/nope.yaml: no such file or directory");
    let err = tree.read(&p("base"), usize::MAX).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("base: is a directory (git main {})", &sha[..12])
    );
    let err = tree.list(&p("README.md")).unwrap_err();
    assert!(err.to_string().starts_with("README.md: not a directory"), "{err}");
}

#[test]
fn resolves_every_kind_of_revision() {
    let tmp = tempfile::tempdir().unwrap();
    let origin = WorkRepo::init(&tmp.path().join("origin"));
    origin.write("v.txt", "1");
    let first = origin.commit("one");
    origin.git(&["tag", "v1"]);
    origin.git(&["tag", "-a", "-m", "annotated", "v1-annotated"]);
    origin.write("v.txt", "2");
    let second = origin.commit("two");
    origin.git(&["checkout", "-q", "-b", "feature"]);
    origin.write("v.txt", "3");
    let third = origin.commit("three");
    origin.git(&["checkout", "-q", "main"]);

    // A clone, so `origin/feature` exists as a remote-tracking branch.
    let clone_dir = tmp.path().join("clone");
    git(
        tmp.path(),
        &[
            "clone",
            "-q",
            origin.dir.to_str().unwrap(),
            clone_dir.to_str().unwrap(),
        ],
    );

    let repo = GitRepo::open(&clone_dir).unwrap();
    let cases = [
        ("main", &second, "2"),
        ("HEAD", &second, "2"),
        ("HEAD~1", &first, "1"),
        ("main^", &first, "1"),
        ("v1", &first, "1"),
        ("v1-annotated", &first, "1"),
        ("origin/feature", &third, "3"),
        ("refs/remotes/origin/feature", &third, "3"),
        (first.as_str(), &first, "1"),
        (&third[..7], &third, "3"),
    ];
    for (rev, sha, content) in cases {
        let tree = repo.tree(rev).unwrap_or_else(|e| panic!("{rev}: {e}"));
        assert_eq!(tree.commit(), sha.as_str(), "{rev}");
        assert_eq!(text(&tree, "v.txt"), content, "{rev}");
        assert_eq!(repo.resolve(rev).unwrap(), sha.as_str(), "{rev}");
    }
}

#[test]
fn never_sees_the_work_tree_or_the_index() {
    let tmp = tempfile::tempdir().unwrap();
    let work = platform(tmp.path());
    work.commit("first");
    // Uncommitted: a modified file, a staged file, an untracked file, a deleted file.
    work.write("base/kafka.yaml", "kind: Edited\n");
    work.write("base/staged.yaml", "staged: true\n");
    work.git(&["add", "base/staged.yaml"]);
    work.write("base/untracked.yaml", "untracked: true\n");
    std::fs::remove_file(work.dir.join("README.md")).unwrap();

    let tree = GitTree::open(&work.dir, "HEAD").unwrap();
    assert_eq!(text(&tree, "base/kafka.yaml"), "kind: Kafka\n");
    assert_eq!(text(&tree, "README.md"), "platform\n");
    assert_eq!(tree.kind(&p("base/staged.yaml")).unwrap(), None);
    assert_eq!(tree.kind(&p("base/untracked.yaml")).unwrap(), None);
    assert_eq!(
        tree.list(&p("base")).unwrap(),
        ["kafka.yaml", "kustomization.yaml", "prometheus"]
    );
}

#[test]
fn follows_symlinks_inside_the_tree_and_refuses_the_others() {
    let tmp = tempfile::tempdir().unwrap();
    let work = platform(&tmp.path().join("repo"));
    work.symlink("clusters/dev/kafka.yaml", "../../base/kafka.yaml")
        .symlink("clusters/dev/chain.yaml", "kafka.yaml")
        .symlink("clusters/dev/here", ".")
        .symlink("clusters/dev/escape.yaml", "../../../outside.yaml")
        .symlink("clusters/dev/absolute.yaml", "/etc/passwd")
        .symlink("clusters/dev/escape-dir", "../../..")
        .symlink("clusters/dev/dangling.yaml", "missing.yaml")
        .symlink("clusters/dev/loop-a", "loop-b")
        .symlink("clusters/dev/loop-b", "loop-a");
    // What the escaping links point at exists on disk: only the tree's rules keep it out.
    std::fs::write(tmp.path().join("outside.yaml"), "secret").unwrap();
    let sha = work.commit("links");
    // The work tree's links are replaced on disk; the commit's must still be followed.
    std::fs::remove_file(work.dir.join("clusters/prod/base")).unwrap();

    let tree = GitTree::open(&work.dir, &sha).unwrap();
    assert_eq!(text(&tree, "clusters/dev/kafka.yaml"), "kind: Kafka\n");
    assert_eq!(text(&tree, "clusters/dev/chain.yaml"), "kind: Kafka\n");
    assert_eq!(text(&tree, "clusters/dev/here/here/chain.yaml"), "kind: Kafka\n");
    // The real path behind the links, on which the renderer checks its load restrictions.
    assert_eq!(
        tree.real_path(&p("clusters/dev/chain.yaml")).unwrap(),
        Some(p("base/kafka.yaml"))
    );
    assert_eq!(
        tree.real_path(&p("clusters/dev/here/here")).unwrap(),
        Some(p("clusters/dev"))
    );
    assert_eq!(tree.real_path(&p("clusters/dev/dangling.yaml")).unwrap(), None);
    // A link to a directory works in the middle of a path, and `..` after it is the target's parent.
    assert_eq!(tree.kind(&p("clusters/prod/base")).unwrap(), Some(EntryKind::Dir));
    assert_eq!(
        tree.list(&p("clusters/prod/base")).unwrap(),
        ["kafka.yaml", "kustomization.yaml", "prometheus"]
    );
    assert_eq!(
        text(&tree, "clusters/prod/base/prometheus/config.yaml"),
        "scrape: []\n"
    );
    assert_eq!(tree.kind(&p("clusters/dev/dangling.yaml")).unwrap(), None);
    assert!(matches!(
        tree.read(&p("clusters/dev/dangling.yaml"), usize::MAX),
        Err(SourceError::NotFound(_))
    ));

    for escaping in [
        "clusters/dev/escape.yaml",
        "clusters/dev/absolute.yaml",
        "clusters/dev/escape-dir/x",
    ] {
        let err = tree.read(&p(escaping), usize::MAX).unwrap_err();
        assert!(
            matches!(err, SourceError::SymlinkEscapes { .. }),
            "{escaping}: {err}"
        );
        assert!(tree.kind(&p(escaping)).is_err(), "{escaping}");
    }
    assert_eq!(
        tree.read(&p("clusters/dev/escape.yaml"), usize::MAX)
            .unwrap_err()
            .to_string(),
        "clusters/dev/escape.yaml: symlink points outside the repository \
         (clusters/dev/escape.yaml -> ../../../outside.yaml)"
    );
    assert_eq!(
        tree.read(&p("clusters/dev/absolute.yaml"), usize::MAX)
            .unwrap_err()
            .to_string(),
        "clusters/dev/absolute.yaml: symlink points outside the repository (/etc/passwd)"
    );
    let err = tree.read(&p("clusters/dev/loop-a"), usize::MAX).unwrap_err();
    assert_eq!(
        err.to_string(),
        "clusters/dev/loop-a: too many levels of symbolic links"
    );
}

#[test]
fn submodules_are_listed_but_not_read() {
    let tmp = tempfile::tempdir().unwrap();
    let work = platform(tmp.path());
    let pinned = work.commit("first");
    // A gitlink entry, as `git submodule add` records it, without needing a second repository.
    work.git(&[
        "update-index",
        "--add",
        "--cacheinfo",
        &format!("160000,{pinned},vendor/charts"),
    ]);
    work.git(&["commit", "-q", "-m", "submodule"]);

    let tree = GitTree::open(&work.dir, "HEAD").unwrap();
    assert_eq!(tree.list(&p("vendor")).unwrap(), ["charts"]);
    assert_eq!(tree.kind(&p("vendor/charts")).unwrap(), Some(EntryKind::Dir));
    let expected = format!("vendor/charts: is a git submodule (commit {pinned}); submodules are not read");
    assert_eq!(tree.list(&p("vendor/charts")).unwrap_err().to_string(), expected);
    assert_eq!(
        tree.read(&p("vendor/charts/kustomization.yaml"), usize::MAX)
            .unwrap_err()
            .to_string(),
        expected
    );
    assert_eq!(
        tree.kind(&p("vendor/charts/x")).unwrap_err().to_string(),
        expected
    );
}

#[test]
fn errors_name_the_revision_and_the_repository() {
    let tmp = tempfile::tempdir().unwrap();
    let work = platform(tmp.path());
    work.commit("first");
    let repo = work.dir.display();

    let err = GitTree::open(&work.dir, "nope").unwrap_err();
    assert_eq!(err.to_string(), format!("unknown revision 'nope' in {repo}"));
    let err = GitTree::open(&work.dir, "HEAD~5").unwrap_err();
    assert_eq!(err.to_string(), format!("unknown revision 'HEAD~5' in {repo}"));
    let err = GitTree::open(&work.dir, "HEAD^{tree}").unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("revision 'HEAD^{{tree}}' in {repo}: names a tree, not a commit")
    );

    let empty = tempfile::tempdir().unwrap();
    let err = GitTree::open(empty.path(), "main").unwrap_err();
    assert!(
        err.to_string().starts_with(&format!(
            "{}: cannot open git repository:",
            empty.path().display()
        )),
        "{err}"
    );
    // An empty repository has no commit yet.
    let fresh = WorkRepo::init(&empty.path().join("fresh"));
    let err = GitTree::open(&fresh.dir, "HEAD").unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("unknown revision 'HEAD' in {}", fresh.dir.display())
    );
}

#[test]
fn reads_bare_repositories() {
    let tmp = tempfile::tempdir().unwrap();
    let work = platform(&tmp.path().join("work"));
    let sha = work.commit("first");
    let bare = tmp.path().join("bare.git");
    git(
        tmp.path(),
        &[
            "clone",
            "-q",
            "--bare",
            work.dir.to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
    );
    let tree = GitTree::open(&bare, "main").unwrap();
    assert_eq!(tree.commit(), sha);
    assert_eq!(text(&tree, "clusters/prod/base/kafka.yaml"), "kind: Kafka\n");
}

#[test]
fn trees_of_one_repository_are_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<GitTree>();
    assert_send_sync::<GitRepo>();

    let tmp = tempfile::tempdir().unwrap();
    let work = platform(tmp.path());
    let old = work.commit("first");
    work.write("base/kafka.yaml", "kind: Kafka\nspec: {}\n");
    let new = work.commit("second");

    let repo = GitRepo::open(&work.dir).unwrap();
    let trees = [
        Arc::new(repo.tree(&old).unwrap()),
        Arc::new(repo.tree(&new).unwrap()),
    ];
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let tree = trees[i % 2].clone();
            std::thread::spawn(move || {
                (0..200)
                    .map(|_| {
                        tree.read(&p("clusters/prod/base/kafka.yaml"), usize::MAX)
                            .unwrap()
                            .len()
                    })
                    .sum::<usize>()
            })
        })
        .collect();
    let sums: Vec<usize> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(sums, [200 * 12, 200 * 21, 200 * 12, 200 * 21]);
}
