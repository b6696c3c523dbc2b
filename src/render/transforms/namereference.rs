//! Name references (kustomize's nameReferenceTransformer and `nameref.Filter`): after all names
//! are final (prefixes, suffixes, content hashes), every field that names another object of the
//! build — a ConfigMap in a volume, a ServiceAccount in a RoleBinding subject, a Service in an
//! Ingress backend, ... (see [`super::config`]) — is rewritten to that object's final name.
//!
//! The referred object is found by its *previous* names, and narrowed down as kustomize does:
//! same kind, reachable from the referrer's namespace, same roleRef kind, same prefixes and
//! suffixes. RoleBinding subjects are whole `{kind, name, namespace}` maps: their namespace
//! follows the ServiceAccount's too.

use std::collections::{HashMap, HashSet};

use rayon::prelude::*;
use serde_json::{Map, Value};

use super::config::NameBackReference;
use super::fieldspec::{Create, FieldSpec};
use crate::render::error::RenderError;
use crate::render::resource::{GvkSel, Id, NO_NAMESPACE, ResMap, Resource, scalar_text};
use crate::source::TreePath;

/// What the step needs to know of each object; names do not change during the step.
struct Info {
    cur: Id,
    raw_namespace: String,
    cluster_scoped: bool,
    kind: String,
    prev: Vec<Id>,
    org_namespace: String,
    prefixes: Vec<String>,
    suffixes: Vec<String>,
}

impl Info {
    fn of(r: &Resource) -> Info {
        Info {
            cur: r.cur_id(),
            raw_namespace: r.namespace().to_string(),
            cluster_scoped: r.is_cluster_scoped(),
            kind: r.kind().to_string(),
            prev: r.prev_ids(),
            org_namespace: r.org_id().namespace,
            prefixes: r.prefixes.clone(),
            suffixes: r.suffixes.clone(),
        }
    }
}

/// kustomize's `SameEndingSubSlice`.
fn same_ending(a: &[String], b: &[String]) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    if short.is_empty() {
        return long.is_empty();
    }
    long.ends_with(short)
}

/// kustomize's `PrefixesSuffixesEquals`.
fn affixes_equal(a: &Info, b: &Info, allow_empty: bool) -> bool {
    if allow_empty {
        let prefix_ok =
            a.prefixes.is_empty() || b.prefixes.is_empty() || same_ending(&a.prefixes, &b.prefixes);
        let suffix_ok =
            a.suffixes.is_empty() || b.suffixes.is_empty() || same_ending(&a.suffixes, &b.suffixes);
        prefix_ok && suffix_ok
    } else {
        same_ending(&a.prefixes, &b.prefixes) && same_ending(&a.suffixes, &b.suffixes)
    }
}

/// The whole build, indexed by previous name.
struct Candidates {
    infos: Vec<Info>,
    by_prev_name: HashMap<String, Vec<usize>>,
    /// Objects by original namespace (cluster-scoped ones left out), so that a reference with a
    /// namespace does not scan the whole build.
    by_org_namespace: HashMap<String, Vec<usize>>,
}

/// One referrer being fixed.
struct Referrer<'c> {
    all: &'c Candidates,
    me: usize,
    /// Namespaces of the ServiceAccount subjects of a RoleBinding (kustomize lets a RoleBinding
    /// refer into those namespaces).
    subject_namespaces: &'c HashSet<String>,
    /// `roleRef` group and kind, when the field being fixed is `roleRef/name`.
    role_ref: Option<GvkSel>,
    target: &'c GvkSel,
}

impl Referrer<'_> {
    fn info(&self) -> &Info {
        &self.all.infos[self.me]
    }

    /// kustomize's `SubsetThatCouldBeReferencedByResource`.
    fn could_refer_to(&self, j: usize) -> bool {
        let me = self.info();
        let other = &self.all.infos[j];
        me.cluster_scoped
            || other.cluster_scoped
            || me.cur.namespace == other.cur.namespace
            || self.subject_namespaces.contains(&other.raw_namespace)
    }

    /// kustomize's `selectReferral`.
    fn select(
        &self,
        old_name: &str,
        candidates: &[usize],
        identical: fn(&[&Info]) -> bool,
    ) -> Result<Option<usize>, String> {
        let infos = &self.all.infos;
        let me = self.info();
        let mut c: Vec<usize> = candidates
            .iter()
            .copied()
            .filter(|&j| infos[j].prev.iter().any(|id| id.name == old_name))
            .filter(|&j| infos[j].prev.iter().any(|id| id.is_selected(self.target)))
            .filter(|&j| match &self.role_ref {
                Some(sel) => infos[j].prev.iter().any(|id| id.is_selected(sel)),
                None => true,
            })
            .filter(|&j| {
                me.cluster_scoped
                    || infos[j].cluster_scoped
                    || infos[j].kind == "ServiceAccount"
                    || me.cur.namespace == infos[j].cur.namespace
            })
            .collect();
        if c.len() == 1 {
            return Ok(Some(c[0]));
        }
        c.retain(|&j| affixes_equal(&infos[j], me, true));
        if c.len() > 1 {
            c.retain(|&j| affixes_equal(&infos[j], me, false));
        }
        match c.len() {
            0 => Ok(None),
            1 => Ok(Some(c[0])),
            _ => {
                let found: Vec<&Info> = c.iter().map(|&j| &infos[j]).collect();
                if identical(&found) {
                    return Ok(Some(c[0]));
                }
                let ids: Vec<String> = found
                    .iter()
                    .map(|i| format!("{}/{}/{}", i.cur.kind, i.cur.namespace, i.cur.name))
                    .collect();
                Err(format!("found multiple possible referrals: {}", ids.join(", ")))
            }
        }
    }

    fn by_prev_name(&self, name: &str) -> Vec<usize> {
        self.all
            .by_prev_name
            .get(name)
            .map(|v| v.iter().copied().filter(|&j| self.could_refer_to(j)).collect())
            .unwrap_or_default()
    }

    fn set(&self, node: &mut Value) -> Result<(), String> {
        match node {
            Value::Null => Ok(()),
            Value::Object(map) => self.set_mapping(map),
            Value::Array(items) => items.iter_mut().try_for_each(|item| match item {
                Value::Null => Ok(()),
                Value::Object(map) => self.set_mapping(map),
                Value::Array(_) => Err(format!(
                    "{item} is expected to be either a string or a map of string"
                )),
                scalar => self.set_scalar(scalar),
            }),
            scalar => self.set_scalar(scalar),
        }
    }

    fn set_scalar(&self, node: &mut Value) -> Result<(), String> {
        let old = scalar_text(node);
        let candidates = self.by_prev_name(&old);
        let Some(j) = self.select(&old, &candidates, |found| {
            found.iter().all(|i| i.cur.name == found[0].cur.name)
        })?
        else {
            return Ok(());
        };
        let new = &self.all.infos[j].cur.name;
        if *new != old {
            *node = Value::String(new.clone());
        }
        Ok(())
    }

    fn set_mapping(&self, map: &mut Map<String, Value>) -> Result<(), String> {
        let Some(name) = map.get("name") else {
            return Err("path config error; no 'name' field in node".to_string());
        };
        let old = scalar_text(name);
        let mut candidates = self.by_prev_name(&old);
        if let Some(ns) = map.get("namespace") {
            let ns = scalar_text(ns);
            let infos = &self.all.infos;
            let by_org: Vec<usize> = candidates
                .iter()
                .copied()
                .filter(|&j| infos[j].org_namespace != NO_NAMESPACE && infos[j].org_namespace == ns)
                .collect();
            // kustomize groups the whole reachable set by original namespace, and falls back to the
            // current namespace only when no object originally lived in `ns`.
            let any_org = self
                .all
                .by_org_namespace
                .get(ns.as_str())
                .is_some_and(|group| group.iter().any(|&j| self.could_refer_to(j)));
            candidates = if any_org {
                by_org
            } else {
                candidates
                    .into_iter()
                    .filter(|&j| infos[j].cur.namespace != NO_NAMESPACE && infos[j].cur.namespace == ns)
                    .collect()
            };
        }
        let Some(j) = self.select(&old, &candidates, |found| {
            found
                .iter()
                .all(|i| i.cur.name == found[0].cur.name && i.raw_namespace == found[0].raw_namespace)
        })?
        else {
            return Ok(());
        };
        let referral = &self.all.infos[j];
        if referral.cur.name == old && referral.raw_namespace.is_empty() {
            return Ok(());
        }
        map.insert("name".into(), Value::String(referral.cur.name.clone()));
        if !referral.raw_namespace.is_empty() {
            map.insert("namespace".into(), Value::String(referral.raw_namespace.clone()));
        }
        Ok(())
    }
}

/// Namespaces of a RoleBinding's ServiceAccount subjects.
fn subject_namespaces(r: &Resource) -> Result<HashSet<String>, String> {
    let mut out = HashSet::new();
    if r.kind() != "RoleBinding" {
        return Ok(out);
    }
    let Some(Value::Array(subjects)) = r.obj.get("subjects") else {
        return Ok(out);
    };
    for s in subjects {
        let (Some(ns), Some(kind)) = (s.get("namespace"), s.get("kind")) else {
            continue;
        };
        if kind.as_str() == Some("ServiceAccount") {
            match ns.as_str() {
                Some(ns) => {
                    out.insert(ns.to_string());
                }
                None => return Err("a ServiceAccount subject's namespace is not a string".to_string()),
            }
        }
    }
    Ok(out)
}

fn role_ref(r: &Resource) -> Option<GvkSel> {
    let role_ref = r.obj.get("roleRef")?;
    let group = role_ref.get("apiGroup").filter(|v| !v.is_null())?;
    let kind = role_ref.get("kind").filter(|v| !v.is_null())?;
    Some(GvkSel {
        group: scalar_text(group),
        version: String::new(),
        kind: scalar_text(kind),
    })
}

/// Updates every name reference in `acc` to the referred object's final name.
pub fn fix(acc: &mut ResMap, back_refs: &[NameBackReference], file: &TreePath) -> Result<(), RenderError> {
    let infos: Vec<Info> = acc.resources().par_iter().map(Info::of).collect();
    let mut by_prev_name: HashMap<String, Vec<usize>> = HashMap::new();
    for (j, info) in infos.iter().enumerate() {
        let mut names: Vec<&str> = info.prev.iter().map(|id| id.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        for name in names {
            by_prev_name.entry(name.to_string()).or_default().push(j);
        }
    }
    let mut by_org_namespace: HashMap<String, Vec<usize>> = HashMap::new();
    for (j, info) in infos.iter().enumerate() {
        if info.org_namespace != NO_NAMESPACE {
            by_org_namespace
                .entry(info.org_namespace.clone())
                .or_default()
                .push(j);
        }
    }
    let all = Candidates {
        infos,
        by_prev_name,
        by_org_namespace,
    };
    let error = |r: &Resource, path: &str, message: String| RenderError::Transform {
        file: file.clone(),
        step: "name references",
        message: format!("updating the '{path}' field of {}: {message}", r.display_id()),
    };
    acc.try_for_each_mut(|me, r| {
        let (group, version, kind) = r.org_gvk();
        let selected: Vec<(&NameBackReference, &FieldSpec)> = back_refs
            .iter()
            .flat_map(|back_ref| back_ref.referrers.iter().map(move |fs| (back_ref, fs)))
            .filter(|(_, fs)| fs.gvk.selects(group, version, kind))
            .collect();
        let subjects = subject_namespaces(r).map_err(|e| error(r, "subjects", e))?;
        for (back_ref, fs) in selected {
            let referrer = Referrer {
                all: &all,
                me,
                subject_namespaces: &subjects,
                role_ref: if fs.path.ends_with("roleRef/name") {
                    role_ref(r)
                } else {
                    None
                },
                target: &back_ref.target,
            };
            let mut set = |node: &mut Value| referrer.set(node);
            fs.apply_unchecked(&mut r.obj, Create::None, &mut set)
                .map_err(|e| error(r, &fs.path, e))?;
        }
        Ok(())
    })
}
