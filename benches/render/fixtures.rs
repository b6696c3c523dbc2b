//! Fixture trees written into a temporary directory at run time (nothing generated is committed).
//!
//! Every fixture uses only what both kgitops and `kubectl kustomize` implement, so that their outputs
//! can be compared in the same run.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// A kustomization to render: `root` is the fixture's own directory, `dir` the overlay inside it;
/// its base is `root/base`.
pub struct Fixture {
    pub root: PathBuf,
    pub dir: &'static str,
}

impl Fixture {
    /// The overlay directory on disk, as `kubectl kustomize` and `kgitops render` take it.
    pub fn overlay(&self) -> PathBuf {
        self.root.join(self.dir)
    }
}

fn write(root: &Path, rel: &str, content: &str) -> Result<()> {
    let path = root.join(rel);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    fs::write(&path, content).with_context(|| format!("writing {}", path.display()))
}

/// (a) A small layered overlay: a base of Deployment, Service and ConfigMap, and an overlay with a
/// namespace, a name prefix, labels (selectors included), a strategic merge patch and a
/// ConfigMap generator whose hashed name the Deployment refers to.
pub fn small(root: &Path) -> Result<Fixture> {
    write(
        root,
        "base/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
commonAnnotations:
  owner: shop-team
resources:
- deployment.yaml
- service.yaml
- configmap.yaml
",
    )?;
    write(
        root,
        "base/deployment.yaml",
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
spec:
  replicas: 1
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: nginx:1.27
        ports:
        - containerPort: 8080
        envFrom:
        - configMapRef:
            name: web-config
        volumeMounts:
        - name: settings
          mountPath: /etc/web
      volumes:
      - name: settings
        configMap:
          name: web-settings
",
    )?;
    write(
        root,
        "base/service.yaml",
        "apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector:
    app: web
  ports:
  - name: http
    port: 80
    targetPort: 8080
",
    )?;
    write(
        root,
        "base/configmap.yaml",
        "apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
data:
  LISTEN: \":8080\"
  GREETING: hello
",
    )?;
    write(
        root,
        "overlays/dev/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- ../../base
namespace: shop-dev
namePrefix: dev-
labels:
- pairs:
    env: dev
  includeSelectors: true
patches:
- path: deployment-patch.yaml
configMapGenerator:
- name: web-settings
  literals:
  - LOG_LEVEL=debug
  - FEATURE_CHECKOUT=on
",
    )?;
    write(
        root,
        "overlays/dev/deployment-patch.yaml",
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  template:
    spec:
      containers:
      - name: web
        env:
        - name: ENVIRONMENT
          value: dev
        resources:
          limits:
            memory: 256Mi
",
    )?;
    Ok(Fixture {
        root: root.to_path_buf(),
        dir: "overlays/dev",
    })
}

/// This repository's own `clusters/dev` (the Kafka platform of issue 5), when the checkout has it.
pub fn repo_dev() -> Option<Fixture> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    root.join("clusters/dev/kustomization.yaml")
        .is_file()
        .then_some(Fixture {
            root,
            dir: "clusters/dev",
        })
}

/// Objects per base file in the large fixtures (50 apps of three objects).
const OBJECTS_PER_FILE: usize = 150;

/// Object `i` of a large base: ConfigMap, Service and Deployment in turn, three per app; each
/// Deployment reads its app's ConfigMap, so prefixing exercises name references.
fn large_object(out: &mut String, i: usize) {
    let app = format!("app-{:05}", i / 3);
    // `write!` into a String cannot fail.
    let _ = match i % 3 {
        0 => write!(
            out,
            "apiVersion: v1
kind: ConfigMap
metadata:
  name: {app}-config
  labels:
    app: {app}
data:
  LOG_LEVEL: info
  LISTEN_ADDR: \":8080\"
  UPSTREAM: http://app-{next:05}:80
",
            next = i / 3 + 1
        ),
        1 => write!(
            out,
            "apiVersion: v1
kind: Service
metadata:
  name: {app}
  labels:
    app: {app}
spec:
  selector:
    app: {app}
  ports:
  - name: http
    port: 80
    targetPort: 8080
"
        ),
        _ => write!(
            out,
            "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {app}
  labels:
    app: {app}
spec:
  replicas: 1
  selector:
    matchLabels:
      app: {app}
  template:
    metadata:
      labels:
        app: {app}
    spec:
      containers:
      - name: app
        image: registry.example.com/team/app:1.0.0
        ports:
        - containerPort: 8080
        envFrom:
        - configMapRef:
            name: {app}-config
        readinessProbe:
          httpGet:
            path: /healthz
            port: 8080
"
        ),
    };
}

/// (b) and (c): a base of `objects` ConfigMaps, Services and Deployments (150 per file) and an
/// overlay with namespace, name prefix, labels (selectors included), an image override and one
/// JSON 6902 patch targeting every Deployment.
pub fn large(root: &Path, objects: usize) -> Result<Fixture> {
    let mut kustomization =
        String::from("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n");
    for (file, start) in (0..objects).step_by(OBJECTS_PER_FILE).enumerate() {
        let name = format!("apps-{file:03}.yaml");
        let mut text = String::new();
        for i in start..(start + OBJECTS_PER_FILE).min(objects) {
            if i > start {
                text.push_str("---\n");
            }
            large_object(&mut text, i);
        }
        write(root, &format!("base/{name}"), &text)?;
        let _ = writeln!(kustomization, "- {name}");
    }
    write(root, "base/kustomization.yaml", &kustomization)?;
    write(
        root,
        "overlay/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- ../base
namespace: bench
namePrefix: prod-
labels:
- pairs:
    env: prod
    team: platform
  includeSelectors: true
images:
- name: registry.example.com/team/app
  newName: mirror.example.com/team/app
  newTag: 1.4.2
patches:
- target:
    kind: Deployment
  patch: |-
    - op: replace
      path: /spec/replicas
      value: 3
    - op: add
      path: /spec/template/spec/containers/0/resources
      value:
        limits:
          cpu: 500m
          memory: 256Mi
",
    )?;
    Ok(Fixture {
        root: root.to_path_buf(),
        dir: "overlay",
    })
}

/// A git repository holding a fleet of cluster overlays over one base, in two commits.
pub struct Fleet {
    /// The repository (a work tree; kgitops reads its git objects, never the files).
    pub repo: PathBuf,
    /// The same two revisions as plain directories, for `kubectl kustomize`.
    pub checkouts: [PathBuf; 2],
    /// `clusters/<name>` for every cluster.
    pub clusters: Vec<String>,
    /// Revision names for the two commits: the first, and the second that touches `base/`.
    pub revs: [&'static str; 2],
    pub base_objects: usize,
}

/// The fleet's base: a small Kafka platform (Strimzi `Kafka`, metrics ConfigMap, one JMX Service
/// per broker, ZooKeeper proxy and exporter, Prometheus with RBAC). `revision` 1 is the second
/// commit: it changes a metrics rule and the zoo-entrance image in the base.
fn fleet_base(root: &Path, revision: usize) -> Result<usize> {
    let (rule_suffix, zoo_tag) = if revision == 0 {
        ("total", "1.2.0")
    } else {
        ("count", "1.3.0")
    };
    let mut files: Vec<(String, String)> = Vec::new();
    files.push((
        "kafka-metrics.yaml".into(),
        format!(
            "apiVersion: v1
kind: ConfigMap
metadata:
  name: kafka-metrics
data:
  kafka-metrics-config.yml: |
    lowercaseOutputName: true
    rules:
    - pattern: kafka.server<type=(.+), name=(.+)PerSec\\w*><>Count
      name: kafka_server_$1_$2_{rule_suffix}
      type: COUNTER
    - pattern: kafka.server<type=(.+), name=(.+)><>Value
      name: kafka_server_$1_$2
      type: GAUGE
  zookeeper-metrics-config.yml: |
    lowercaseOutputName: true
    rules:
    - pattern: \"org.apache.ZooKeeperService<name0=ReplicatedServer_id(\\\\d+)><>(\\\\w+)\"
      name: \"zookeeper_$2\"
      type: GAUGE
"
        ),
    ));
    files.push((
        "kafka.yaml".into(),
        "apiVersion: kafka.strimzi.io/v1beta2
kind: Kafka
metadata:
  name: main
spec:
  kafka:
    version: 3.9.0
    replicas: 3
    listeners:
    - name: plain
      port: 9093
      type: internal
      tls: false
    - name: external
      port: 9092
      type: nodeport
      tls: false
    config:
      default.replication.factor: 2
      min.insync.replicas: 1
      offsets.topic.replication.factor: 2
      transaction.state.log.replication.factor: 2
      transaction.state.log.min.isr: 1
    resources:
      requests: {memory: 16Gi, cpu: \"4\"}
      limits: {memory: 16Gi, cpu: \"4\"}
    jvmOptions:
      -Xms: 3072m
      -Xmx: 3072m
    storage:
      type: persistent-claim
      size: 100Gi
      deleteClaim: false
    metricsConfig:
      type: jmxPrometheusExporter
      valueFrom:
        configMapKeyRef:
          name: kafka-metrics
          key: kafka-metrics-config.yml
  zookeeper:
    replicas: 3
    storage:
      type: persistent-claim
      size: 50Gi
      deleteClaim: false
  entityOperator:
    topicOperator: {}
    userOperator: {}
  kafkaExporter: {}
"
        .into(),
    ));
    let mut jmx = String::new();
    for broker in 0..3 {
        if broker > 0 {
            jmx.push_str("---\n");
        }
        let _ = write!(
            jmx,
            "apiVersion: v1
kind: Service
metadata:
  name: main-kafka-{broker}-jmx
spec:
  type: NodePort
  selector:
    strimzi.io/pod-name: main-kafka-{broker}
  ports:
  - name: jmx
    port: 9999
    targetPort: 9999
"
        );
    }
    files.push(("jmx-services.yaml".into(), jmx));
    for (name, image, port) in [
        (
            "zoo-entrance",
            format!("ghcr.io/scholzj/zoo-entrance:{zoo_tag}"),
            2181,
        ),
        (
            "zk-exporter",
            "dabealu/zookeeper-exporter:0.1.13".to_string(),
            9141,
        ),
    ] {
        files.push((
            format!("{name}.yaml"),
            format!(
                "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels:
    app: {name}
spec:
  replicas: 1
  selector:
    matchLabels:
      app: {name}
  template:
    metadata:
      labels:
        app: {name}
    spec:
      containers:
      - name: {name}
        image: {image}
        ports:
        - containerPort: {port}
        envFrom:
        - configMapRef:
            name: cluster-info
---
apiVersion: v1
kind: Service
metadata:
  name: {name}
spec:
  selector:
    app: {name}
  ports:
  - port: {port}
    targetPort: {port}
"
            ),
        ));
    }
    files.push((
        "prometheus.yaml".into(),
        "apiVersion: v1
kind: ServiceAccount
metadata:
  name: prometheus
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: prometheus
rules:
- apiGroups: [\"\"]
  resources: [pods, services, endpoints]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: prometheus
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: prometheus
subjects:
- kind: ServiceAccount
  name: prometheus
  namespace: default
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: prometheus-config
data:
  prometheus.yml: |
    global:
      scrape_interval: 30s
    scrape_configs:
    - job_name: kafka-exporter
      kubernetes_sd_configs:
      - role: pod
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: prometheus
spec:
  serviceName: prometheus
  replicas: 1
  selector:
    matchLabels:
      app: prometheus
  template:
    metadata:
      labels:
        app: prometheus
    spec:
      serviceAccountName: prometheus
      containers:
      - name: prometheus
        image: quay.io/prometheus/prometheus:v2.55.0
        args:
        - --config.file=/etc/prometheus/prometheus.yml
        - --storage.tsdb.retention.time=7d
        volumeMounts:
        - name: config
          mountPath: /etc/prometheus
        - name: data
          mountPath: /prometheus
      volumes:
      - name: config
        configMap:
          name: prometheus-config
  volumeClaimTemplates:
  - metadata:
      name: data
    spec:
      accessModes: [ReadWriteOnce]
      resources:
        requests:
          storage: 20Gi
---
apiVersion: v1
kind: Service
metadata:
  name: prometheus
spec:
  selector:
    app: prometheus
  ports:
  - port: 9090
"
        .into(),
    ));
    let mut kustomization =
        String::from("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n");
    let mut objects = 0;
    for (name, text) in &files {
        write(root, &format!("base/{name}"), text)?;
        let _ = writeln!(kustomization, "- {name}");
        objects += text.lines().filter(|l| l.starts_with("kind: ")).count();
    }
    write(root, "base/kustomization.yaml", &kustomization)?;
    Ok(objects)
}

/// One cluster overlay: namespace, labels, an image tag, a strategic merge patch on the Kafka, a
/// JSON 6902 patch on Prometheus and a ConfigMap generator.
fn fleet_cluster(root: &Path, index: usize) -> Result<String> {
    let name = format!("c{index:03}");
    let brokers = 3 + index % 3;
    let region = ["eu-west-1", "us-east-1", "ap-south-1"][index % 3];
    write(
        root,
        &format!("clusters/{name}/kustomization.yaml"),
        &format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- ../../base
namespace: kafka-{name}
labels:
- pairs:
    cluster: {name}
images:
- name: quay.io/prometheus/prometheus
  newTag: v2.55.{patch}
patches:
- path: kafka-patch.yaml
- target:
    kind: StatefulSet
    name: prometheus
  patch: |-
    - op: replace
      path: /spec/template/spec/containers/0/args/1
      value: --storage.tsdb.retention.time={days}d
configMapGenerator:
- name: cluster-info
  literals:
  - CLUSTER={name}
  - REGION={region}
",
            patch = index % 10,
            days = 7 + index % 14,
        ),
    )?;
    write(
        root,
        &format!("clusters/{name}/kafka-patch.yaml"),
        &format!(
            "apiVersion: kafka.strimzi.io/v1beta2
kind: Kafka
metadata:
  name: main
spec:
  kafka:
    replicas: {brokers}
    storage:
      type: persistent-claim
      size: {size}Gi
      deleteClaim: false
",
            size = 100 + 50 * (index % 4),
        ),
    )?;
    Ok(format!("clusters/{name}"))
}

/// Writes the whole fleet at `revision` (0 or 1) into `root`.
fn fleet_tree(root: &Path, clusters: usize, revision: usize) -> Result<(Vec<String>, usize)> {
    let base_objects = fleet_base(root, revision)?;
    let dirs = (0..clusters)
        .map(|i| fleet_cluster(root, i))
        .collect::<Result<Vec<_>>>()?;
    Ok((dirs, base_objects))
}

fn git(repo: &Path, args: &[&str]) -> Result<()> {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["-c", "user.name=bench", "-c", "user.email=bench@example.invalid"])
        .args(["-c", "commit.gpgsign=false", "-c", "core.hooksPath=/dev/null"])
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .context("running git")?;
    if !out.status.success() {
        bail!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// The fleet: a real git repository in `root/repo` with two commits (the second touches only
/// `base/`), and each revision also written out as a plain directory for `kubectl kustomize`.
pub fn fleet(root: &Path, clusters: usize) -> Result<Fleet> {
    let repo = root.join("repo");
    fs::create_dir_all(&repo)?;
    git(&repo, &["init", "-q", "-b", "main"])?;
    let (dirs, base_objects) = fleet_tree(&repo, clusters, 0)?;
    git(&repo, &["add", "-A"])?;
    git(&repo, &["commit", "-q", "-m", "fleet"])?;
    fleet_base(&repo, 1)?;
    git(
        &repo,
        &[
            "commit",
            "-q",
            "-a",
            "-m",
            "base: metrics rule and zoo-entrance image",
        ],
    )?;
    let checkouts = [root.join("rev0"), root.join("rev1")];
    for (revision, dir) in checkouts.iter().enumerate() {
        fleet_tree(dir, clusters, revision)?;
    }
    Ok(Fleet {
        repo,
        checkouts,
        clusters: dirs,
        revs: ["HEAD~1", "HEAD"],
        base_objects,
    })
}
