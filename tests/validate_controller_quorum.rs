//! The controller-quorum change rules (`node-pool-controller-role-removed`,
//! `node-pool-controller-pool-removed`) on both API generations of a running KRaft cluster: `v1` on
//! Strimzi 1.2.0 and `v1beta2` on 0.51.0. The clusters are the node-pool fixtures
//! (`tests/fixtures/node-pools/`: 3 dedicated controllers, 3 brokers); each test changes the head
//! revision one way and asserts the finding, and that the changes Strimzi supports pass.

mod common;
mod validate_support;

use kgitops::validate::{Finding, Severity, rule};
use serde_json::{Value, json};
use validate_support::rule_findings as findings;
use validate_support::{set, text, yaml};

/// One API generation on one Strimzi release.
#[derive(Clone, Copy, Debug)]
struct Gen {
    api: &'static str,
    fixture: &'static str,
}

const GENERATIONS: [Gen; 2] = [
    Gen {
        api: "kafka.strimzi.io/v1",
        fixture: "kraft-v1-1.2.0.yaml",
    },
    Gen {
        api: "kafka.strimzi.io/v1beta2",
        fixture: "kraft-v1beta2-0.51.0.yaml",
    },
];

impl Gen {
    fn render(self) -> Vec<Value> {
        let path = common::repo_root()
            .join("tests/fixtures/node-pools")
            .join(self.fixture);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let objects = yaml(&text);
        assert!(
            objects
                .iter()
                .filter(|o| o["kind"] == "Kafka" || o["kind"] == "KafkaNodePool")
                .all(|o| o["apiVersion"] == self.api),
            "{self:?}"
        );
        objects
    }

    /// The fixture changed by `f`.
    fn with(self, f: impl FnOnce(&mut Vec<Value>)) -> Vec<Value> {
        let mut objects = self.render();
        f(&mut objects);
        objects
    }
}

fn pool<'a>(objects: &'a mut [Value], name: &str) -> &'a mut Value {
    validate_support::object(objects, "KafkaNodePool", name)
}

fn drop_pool(objects: &mut Vec<Value>, name: &str) {
    objects.retain(|o| !(o["kind"] == "KafkaNodePool" && o["metadata"]["name"] == name));
}

fn passes(g: Gen, rule: &str, from: Option<&[Value]>, to: &[Value]) {
    let found = findings(rule, from, to);
    assert!(found.is_empty(), "{g:?}: {rule} should pass:\n{}", text(found));
}

/// The one finding of `rule`, with its object, path, severity and the parts its message says.
fn fails(
    g: Gen,
    rule_id: &str,
    from: &[Value],
    to: &[Value],
    object: &str,
    path: &str,
    parts: &[&str],
) -> Finding {
    let found = findings(rule_id, Some(from), to);
    assert_eq!(found.len(), 1, "{g:?}: {rule_id}:\n{}", text(found.clone()));
    let f = found.into_iter().next().unwrap_or_else(|| unreachable!());
    assert_eq!(
        (f.object.as_str(), f.path.as_str()),
        (object, path),
        "{g:?}: {f:#?}"
    );
    assert_eq!(f.severity, Severity::Error);
    for part in parts {
        assert!(f.message.contains(part), "{g:?}: {part:?} not in {:?}", f.message);
    }
    assert!(!f.fix.is_empty());
    f
}

const CONTROLLER: &str = "KafkaNodePool/kafka-dev/controller";
const BROKER: &str = "KafkaNodePool/kafka-dev/broker";

#[test]
fn the_rules_say_what_strimzi_does() {
    for id in [
        "node-pool-controller-role-removed",
        "node-pool-controller-pool-removed",
    ] {
        let r = rule(id).unwrap_or_else(|| panic!("{id} is in the table"));
        assert!(
            r.why.contains("static controller quorum") || r.why.contains("static quorum"),
            "{id}: {}",
            r.why
        );
        assert!(r.why.contains("controller.quorum.voters"), "{id}: {}", r.why);
    }
}

#[test]
fn node_pool_controller_role_removed() {
    let rule = "node-pool-controller-role-removed";
    for g in GENERATIONS {
        let base = g.render();
        // The dedicated controllers become brokers: the whole quorum goes.
        let to_brokers = g.with(|o| set(pool(o, "controller"), "/spec/roles", json!(["broker"])));
        passes(g, rule, None, &to_brokers);
        fails(
            g,
            rule,
            &base,
            &to_brokers,
            CONTROLLER,
            "spec.roles",
            &[
                "from [controller] to [broker]",
                "the 3 controller(s) of this pool leave the controller quorum of the running KRaft cluster \
                 Kafka/kafka-dev/main (3 controller(s) before, 0 after)",
                "static controller quorum",
            ],
        );
        // Dual-role brokers back to brokers only: the quorum shrinks from 6 to 3.
        let dual = g.with(|o| set(pool(o, "broker"), "/spec/roles", json!(["broker", "controller"])));
        fails(
            g,
            rule,
            &dual,
            &base,
            BROKER,
            "spec.roles",
            &[
                "from [broker, controller] to [broker]",
                "(6 controller(s) before, 3 after)",
            ],
        );
        // A cluster the change creates has no quorum yet.
        passes(g, rule, Some(&[][..]), &to_brokers);
        // Controllers that also become brokers keep their vote (Strimzi's supported way to join
        // roles).
        let joined = g.with(|o| {
            set(
                pool(o, "controller"),
                "/spec/roles",
                json!(["controller", "broker"]),
            )
        });
        passes(g, rule, Some(&base), &joined);
        // A pool without nodes has no vote to lose.
        let empty = g.with(|o| set(pool(o, "controller"), "/spec/replicas", json!(0)));
        let empty_to_brokers = g.with(|o| {
            set(pool(o, "controller"), "/spec/replicas", json!(0));
            set(pool(o, "controller"), "/spec/roles", json!(["broker"]));
        });
        passes(g, rule, Some(&empty), &empty_to_brokers);
    }
}

#[test]
fn node_pool_controller_pool_removed() {
    let rule = "node-pool-controller-pool-removed";
    for g in GENERATIONS {
        let base = g.render();
        let removed = g.with(|o| drop_pool(o, "controller"));
        passes(g, rule, None, &removed);
        fails(
            g,
            rule,
            &base,
            &removed,
            CONTROLLER,
            "",
            &[
                "removed while it runs 3 controller(s) of the running KRaft cluster Kafka/kafka-dev/main",
                "(3 controller(s) before, 0 after)",
                "controller.quorum.voters",
            ],
        );
        // A rename is a removal: the new pool's nodes are new voters.
        let renamed = g.with(|o| set(pool(o, "controller"), "/metadata/name", json!("controllers")));
        fails(
            g,
            rule,
            &base,
            &renamed,
            CONTROLLER,
            "",
            &[
                "new controller pool controllers does not take its place",
                "(3 controller(s) before, 3 after)",
            ],
        );
        // The broker pool has no vote; a pool scaled to 0 before has none left; a deleted cluster
        // takes its pools with it; a new cluster has no quorum yet.
        passes(g, rule, Some(&base), &g.with(|o| drop_pool(o, "broker")));
        let drained = g.with(|o| set(pool(o, "controller"), "/spec/replicas", json!(0)));
        passes(g, rule, Some(&drained), &removed);
        let gone = g.with(|o| o.retain(|x| x["apiVersion"] == "v1"));
        passes(g, rule, Some(&base), &gone);
        passes(g, rule, Some(&[][..]), &removed);
    }
}
