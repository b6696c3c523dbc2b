//! `kgitops strimzi path` and the `strimzi-upgrade-*` rules end to end, on real git repositories:
//! this repository's own platform (`base/`, `clusters/`, `infrastructure/`), whose
//! `clusters/prod-eu-west-1` runs Strimzi 0.45.2 with Kafka 3.9.2 on ZooKeeper, and a small KRaft
//! cluster (tests/fixtures/strimzi-path/kraft.yaml). The path is printed as text and JSON, with the
//! exit codes 0 (already there), 1 (steps remain) and 2 (no path); each rule is shown rejecting a
//! commit that leaves the path, and a commit that follows it passing.

mod common;

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn write(repo: &Path, path: &str, text: &str) {
    let path = repo.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn edit(repo: &Path, path: &str, from: &str, to: &str) {
    let path = repo.join(path);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{} has no {from:?}", path.display());
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
}

fn commit(repo: &Path, message: &str) {
    common::git(repo, &["add", "."]);
    common::git(repo, &["commit", "-qm", message]);
}

/// A git repository holding this repository's platform (one commit).
fn platform_repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    common::git(r, &["init", "-q", "-b", "main"]);
    for part in ["base", "clusters", "infrastructure"] {
        common::copy_dir(&common::repo_root().join(part), &r.join(part));
    }
    commit(r, "platform");
    dir
}

/// The KRaft fixture as cluster `kraft` (namespace kafka-kraft), with `(from, to)` replacements.
fn kraft_cluster(repo: &Path, edits: &[(&str, &str)]) {
    let path = common::repo_root().join("tests/fixtures/strimzi-path/kraft.yaml");
    let mut text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for (from, to) in edits {
        assert!(text.contains(from), "the fixture has no {from:?}");
        text = text.replacen(from, to, 1);
    }
    write(repo, "clusters/kraft/kafka.yaml", &text);
    write(
        repo,
        "clusters/kraft/kustomization.yaml",
        "namespace: kafka-kraft\nresources:\n- kafka.yaml\n",
    );
}

fn kgitops(repo: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kgitops"))
        .args(args)
        .arg("--repo")
        .arg(repo)
        .output()
        .expect("kgitops runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The path of prod-eu-west-1 to 1.2.0, as the numbered lines begin.
const PROD_STEPS: [&str; 12] = [
    "  1. [migration] migrate from ZooKeeper to KRaft on Strimzi 0.45.2 with Kafka 3.9.2",
    "  2. Kafka 3.9.2 -> 3.9.1 on Strimzi 0.45.2 (spec.kafka.version; a patch downgrade",
    "  3. operator Strimzi 0.45.2 -> 0.47.0 (",
    "  4. Kafka 3.9.1 -> 4.0.0 on Strimzi 0.47.0 (spec.kafka.version; the operator then raises the metadata \
     version to 4.0)",
    "  5. operator Strimzi 0.47.0 -> 0.50.1 (",
    "  6. Kafka 4.0.0 -> 4.1.1 on Strimzi 0.50.1 (",
    "  7. convert every Strimzi resource to kafka.strimzi.io/v1 on Strimzi 0.50.1",
    "  8. CRD storage version v1 on Strimzi 0.50.1",
    "  9. operator Strimzi 0.50.1 -> 1.0.1 (",
    " 10. Kafka 4.1.1 -> 4.2.0 on Strimzi 1.0.1 (",
    " 11. operator Strimzi 1.0.1 -> 1.2.0 (",
    " 12. Kafka 4.2.0 -> 4.3.1 on Strimzi 1.2.0 (",
];

#[test]
fn the_path_of_prod_from_zookeeper_on_045_to_120() {
    let dir = platform_repo();
    let args = [
        "strimzi",
        "path",
        "--cluster",
        "prod-eu-west-1",
        "--to",
        "1.2.0",
        "--rev",
        "HEAD",
    ];
    let (code, out, err) = kgitops(dir.path(), &args);
    assert_eq!(code, 1, "{out}{err}");
    println!("{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "prod-eu-west-1: Kafka/kafka-prod/main", "{out}");
    assert_eq!(
        lines[1], "  now:    Strimzi 0.45.2, Kafka 3.9.2, ZooKeeper, kafka.strimzi.io/v1beta2",
        "{out}"
    );
    assert!(
        lines[2].contains("annotation kgitops.io/strimzi-release on Kafka/kafka-prod/main"),
        "{out}"
    );
    assert_eq!(lines[3], "  target: Strimzi 1.2.0, Kafka 4.3.1", "{out}");
    assert_eq!(
        lines[4],
        "12 step(s), one commit each, each applied and finished before the next:"
    );
    assert_eq!(lines.len(), 5 + PROD_STEPS.len(), "{out}");
    for (line, want) in lines[5..].iter().zip(PROD_STEPS) {
        assert!(
            line.starts_with(want),
            "{line:?} does not start with {want:?}\n{out}"
        );
    }
    // The operator step into 0.49+ says what KafkaUsers need before it.
    assert!(lines[9].contains("acls[].operations"), "{out}");

    let mut json_args = args.to_vec();
    json_args.extend(["--output", "json"]);
    let (code, out, err) = kgitops(dir.path(), &json_args);
    assert_eq!(code, 1, "{out}{err}");
    let report: Value = serde_json::from_str(&out).expect("JSON report");
    assert_eq!(report["cluster"], "prod-eu-west-1");
    assert_eq!(report["kafka"], "Kafka/kafka-prod/main");
    assert_eq!(report["from"]["release"], "0.45.2");
    assert_eq!(report["from"]["kafka"], "3.9.2");
    assert_eq!(report["from"]["mode"], "ZooKeeper");
    assert_eq!(report["from"]["api"], "v1beta2");
    assert_eq!(report["to"]["release"], "1.2.0");
    assert_eq!(report["to"]["kafka"], "4.3.1");
    let steps = report["steps"].as_array().unwrap();
    let kinds: Vec<&str> = steps.iter().map(|s| s["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "kraft-migration",
            "kafka-version",
            "operator",
            "kafka-version",
            "operator",
            "kafka-version",
            "convert-to-v1",
            "crd-upgrade",
            "operator",
            "kafka-version",
            "operator",
            "kafka-version"
        ]
    );
    assert_eq!(steps[1]["downgrade"], true);
    assert_eq!(steps[2]["to"], "0.47.0");
    assert_eq!(steps[11]["number"], 12);
    assert!(
        steps[0]["description"]
            .as_str()
            .unwrap()
            .contains("KRaftPostMigration")
    );
}

#[test]
fn already_there_exits_0_and_impossible_targets_exit_2() {
    let dir = platform_repo();
    let path = |to: &str, extra: &[&str]| {
        let mut args = vec!["strimzi", "path", "--cluster", "prod-eu-west-1", "--to", to];
        args.extend(extra);
        kgitops(dir.path(), &args)
    };
    // The work tree (no --rev): 0.45.2 keeps ZooKeeper, nothing to do.
    let (code, out, err) = path("0.45.2", &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.ends_with("already there: nothing to do\n"), "{out}");
    let (code, out, err) = path("0.45.0", &[]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("Strimzi 0.45.2 -> 0.45.0 is an operator downgrade"),
        "{err}"
    );
    let (code, _, err) = path("9.9.9", &[]);
    assert_eq!(code, 2);
    assert!(err.contains("\"9.9.9\" is not one kgitops has data for"), "{err}");
    let (code, _, err) = path("1.2.0", &["--kafka", "3.9.2"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("Kafka 3.9.2 is not supported by Strimzi 1.2.0"),
        "{err}"
    );
    let (code, _, err) = kgitops(
        dir.path(),
        &["strimzi", "path", "--cluster", "qa", "--to", "1.2.0"],
    );
    assert_eq!(code, 2);
    assert!(err.contains("clusters/qa: no such cluster overlay"), "{err}");
}

/// `validate --from HEAD~1 --to HEAD --cluster C`: exit code, and the `strimzi-upgrade-*` findings
/// as (rule, fix) in JSON.
fn upgrade_findings(repo: &Path, cluster: &str) -> (i32, Vec<(String, String)>) {
    let (code, out, err) = kgitops(
        repo,
        &[
            "validate",
            "--from",
            "HEAD~1",
            "--to",
            "HEAD",
            "--cluster",
            cluster,
            "--output",
            "json",
        ],
    );
    assert!(code == 0 || code == 1, "{out}{err}");
    let report: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    let found = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"].as_str().unwrap().starts_with("strimzi-upgrade-"))
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["fix"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    (code, found)
}

fn rules(found: &[(String, String)]) -> Vec<&str> {
    let mut ids: Vec<&str> = found.iter().map(|(r, _)| r.as_str()).collect();
    ids.sort();
    ids
}

#[test]
fn prod_jumping_to_120_on_zookeeper_breaks_three_rules_each_naming_the_next_step() {
    let dir = platform_repo();
    let r = dir.path();
    edit(
        r,
        "clusters/prod-eu-west-1/operator/kustomization.yaml",
        "../../../infrastructure/strimzi/0.45.2",
        "../../../infrastructure/strimzi/1.2.0",
    );
    edit(
        r,
        "base/kafka/kafka.yaml",
        "kgitops.io/strimzi-release: \"0.45.2\"",
        "kgitops.io/strimzi-release: \"1.2.0\"",
    );
    commit(r, "operator 1.2.0");
    let (code, found) = upgrade_findings(r, "prod-eu-west-1");
    assert_eq!(code, 1);
    assert_eq!(
        rules(&found),
        [
            "strimzi-upgrade-kafka-unsupported",
            "strimzi-upgrade-skips-v1-conversion",
            "strimzi-upgrade-zookeeper"
        ],
        "{found:#?}"
    );
    for (rule, fix) in &found {
        assert!(
            fix.contains("the next step of the path to Strimzi 1.2.0") && fix.contains("[migration]"),
            "{rule}: {fix}"
        );
    }
}

#[test]
fn kraft_commits_that_leave_the_path_and_one_that_follows_it() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    common::git(r, &["init", "-q", "-b", "main"]);
    common::copy_dir(
        &common::repo_root().join("infrastructure"),
        &r.join("infrastructure"),
    );
    let on_101 = [
        ("\"1.2.0\"", "\"1.0.1\""),
        ("version: 4.3.1", "version: 4.2.0"),
        ("metadataVersion: 4.3-IV0", "metadataVersion: \"4.2\""),
    ];
    kraft_cluster(r, &on_101);
    commit(r, "kraft on 1.0.1");

    // Operator and Kafka in one commit: 1.0.1 does not know 4.3.1.
    kraft_cluster(r, &[("metadataVersion: 4.3-IV0", "metadataVersion: \"4.2\"")]);
    commit(r, "operator and kafka at once");
    let (code, found) = upgrade_findings(r, "kraft");
    assert_eq!(code, 1);
    assert_eq!(rules(&found), ["strimzi-upgrade-kafka-unsupported"], "{found:#?}");
    assert!(
        found[0].1.contains("operator Strimzi 1.0.1 -> 1.2.0 (")
            && found[0].1.contains("Kafka 4.2.0 is supported by both"),
        "{found:#?}"
    );

    // The step the fix names: the operator alone. No upgrade finding.
    common::git(r, &["reset", "-q", "--hard", "HEAD~1"]);
    kraft_cluster(
        r,
        &[
            ("version: 4.3.1", "version: 4.2.0"),
            ("metadataVersion: 4.3-IV0", "metadataVersion: \"4.2\""),
        ],
    );
    commit(r, "operator 1.2.0");
    let (_, found) = upgrade_findings(r, "kraft");
    assert!(found.is_empty(), "{found:#?}");

    // Then Kafka 4.3.1 and its metadata version; lowering it again is refused.
    kraft_cluster(r, &[]);
    commit(r, "kafka 4.3.1, metadata 4.3-IV0");
    let (_, found) = upgrade_findings(r, "kraft");
    assert!(found.is_empty(), "{found:#?}");
    kraft_cluster(r, &[("metadataVersion: 4.3-IV0", "metadataVersion: 4.2-IV1")]);
    commit(r, "metadata down");
    let (code, found) = upgrade_findings(r, "kraft");
    assert_eq!(code, 1);
    assert_eq!(
        rules(&found),
        ["strimzi-upgrade-metadata-downgrade"],
        "{found:#?}"
    );
    assert!(
        found[0]
            .1
            .starts_with("keep metadataVersion at 4.3-IV0 or higher"),
        "{found:#?}"
    );
}

#[test]
fn leaving_051_for_12_before_the_v1_conversion_is_refused_and_after_it_passes() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    common::git(r, &["init", "-q", "-b", "main"]);
    common::copy_dir(
        &common::repo_root().join("infrastructure"),
        &r.join("infrastructure"),
    );
    let on_051 = |api: &'static str| {
        let mut edits = vec![
            ("\"1.2.0\"", "\"0.51.0\""),
            ("version: 4.3.1", "version: 4.2.0"),
            ("metadataVersion: 4.3-IV0", "metadataVersion: \"4.2\""),
        ];
        if api == "v1beta2" {
            edits.extend([("kafka.strimzi.io/v1\n", "kafka.strimzi.io/v1beta2\n"); 3]);
        }
        edits
    };
    kraft_cluster(r, &on_051("v1beta2"));
    commit(r, "kraft on 0.51.0, v1beta2");
    let on_120 = [
        ("version: 4.3.1", "version: 4.2.0"),
        ("metadataVersion: 4.3-IV0", "metadataVersion: \"4.2\""),
    ];
    kraft_cluster(r, &on_120);
    commit(r, "converted and on 1.2.0 at once");
    let (code, found) = upgrade_findings(r, "kraft");
    assert_eq!(code, 1);
    assert_eq!(
        rules(&found),
        ["strimzi-upgrade-skips-v1-conversion"],
        "{found:#?}"
    );
    assert!(
        found[0]
            .1
            .contains("convert every Strimzi resource to kafka.strimzi.io/v1 on Strimzi 0.51.0"),
        "{found:#?}"
    );

    // The conversion on 0.51.0 first; then the operator change passes this rule.
    common::git(r, &["reset", "-q", "--hard", "HEAD~1"]);
    kraft_cluster(r, &on_051("v1"));
    commit(r, "converted on 0.51.0");
    let (_, found) = upgrade_findings(r, "kraft");
    assert!(found.is_empty(), "{found:#?}");
    kraft_cluster(r, &on_120);
    commit(r, "operator 1.2.0");
    let (_, found) = upgrade_findings(r, "kraft");
    assert!(found.is_empty(), "{found:#?}");
}
