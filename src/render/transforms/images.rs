//! `images`: kustomize's ImageTagTransformer.
//!
//! An entry matches container images by name (`nginx` matches `nginx`, `nginx:1.2`,
//! `nginx@sha256:...`) and rewrites name, tag and digest. As in kustomize, two passes run per
//! entry: every `containers`/`initContainers` list anywhere in an object (which covers custom
//! resources), then the configured pod-spec paths. CustomResourceDefinitions are left alone.

use regex::Regex;
use serde_json::Value;

use super::fieldspec::{Create, FieldSpec};
use crate::render::kustomization::Image;
use crate::render::resource::{ResMap, scalar_text};

/// One compiled `images` entry.
pub struct ImageRule {
    pattern: Regex,
    new_name: String,
    new_tag: String,
    digest: String,
    tag_suffix: String,
}

impl ImageRule {
    /// Compiles an entry; its name is a regular expression in kustomize, as here.
    pub fn new(image: &Image) -> Result<ImageRule, String> {
        let name = image.name.as_deref().unwrap_or("");
        let pattern = Regex::new(&format!(
            "^{name}(:[a-zA-Z0-9_.{{}}-]*)?(@sha256:[a-zA-Z0-9_.{{}}-]*)?$"
        ))
        .map_err(|e| format!("image name {name:?} is not a valid pattern: {e}"))?;
        Ok(ImageRule {
            pattern,
            new_name: image.new_name.clone().unwrap_or_default(),
            new_tag: image.new_tag.clone().unwrap_or_default(),
            digest: image.digest.clone().unwrap_or_default(),
            tag_suffix: image.tag_suffix.clone().unwrap_or_default(),
        })
    }

    /// The rewritten image, or `None` when this entry does not match it.
    pub fn rewrite(&self, image: &str) -> Option<String> {
        if !self.pattern.is_match(image) {
            return None;
        }
        let (name, tag, digest) = split(image);
        let mut name = name.to_string();
        let (mut tag, mut digest) = (tag.to_string(), digest.to_string());
        if !self.new_name.is_empty() {
            name = self.new_name.clone();
        }
        if !self.new_tag.is_empty() && !self.digest.is_empty() {
            tag = self.new_tag.clone();
            digest = self.digest.clone();
        } else if !self.new_tag.is_empty() {
            tag = self.new_tag.clone();
            digest.clear();
        } else if !self.digest.is_empty() {
            tag.clear();
            digest = self.digest.clone();
        } else if !self.tag_suffix.is_empty() {
            tag.push_str(&self.tag_suffix);
            digest.clear();
        }
        if !tag.is_empty() {
            name = format!("{name}:{tag}");
        }
        if !digest.is_empty() {
            name = format!("{name}@{digest}");
        }
        Some(name)
    }

    fn update(&self, node: &mut Value) -> Result<(), String> {
        match node {
            Value::Object(_) | Value::Array(_) => Err(format!("image must be a string, found {node}")),
            Value::Null => Ok(()),
            scalar => {
                if let Some(new) = self.rewrite(&scalar_text(scalar)) {
                    *scalar = Value::String(new);
                }
                Ok(())
            }
        }
    }

    /// kustomize's legacy pass: every `containers` and `initContainers` list, at any depth.
    fn update_containers(&self, node: &mut Value) -> Result<(), String> {
        match node {
            Value::Object(map) => {
                for (key, value) in map.iter_mut() {
                    self.update_containers(value)?;
                    if (key == "containers" || key == "initContainers")
                        && let Value::Array(items) = value
                    {
                        for image in items.iter_mut().filter_map(|item| item.get_mut("image")) {
                            self.update(image)?;
                        }
                    }
                }
                Ok(())
            }
            Value::Array(items) => items.iter_mut().try_for_each(|i| self.update_containers(i)),
            _ => Ok(()),
        }
    }
}

/// kustomize's `image.Split`: name, tag and digest of an image reference.
pub fn split(image: &str) -> (&str, &str, &str) {
    // A ':' before the first '/' is a registry port, not a tag.
    let offset = match image.find('/') {
        Some(i) if i > 0 => i,
        _ => 0,
    };
    let search = &image[offset..];
    let at = search.find('@').map(|i| i + offset);
    let colon = search.find(':').map(|i| i + offset);
    match (at, colon) {
        (None, None) => (image, "", ""),
        (Some(a), None) => (&image[..a], "", &image[a + 1..]),
        (Some(a), Some(c)) if a < c => (&image[..a], "", &image[a + 1..]),
        (Some(a), Some(c)) => (&image[..c], &image[c + 1..a], &image[a + 1..]),
        (None, Some(c)) => (&image[..c], &image[c + 1..], ""),
    }
}

/// Applies one `images` entry to every object.
pub fn apply(acc: &mut ResMap, image: &Image, specs: &[FieldSpec]) -> Result<(), String> {
    let rule = ImageRule::new(image)?;
    acc.try_for_each_mut(|_, r| {
        if r.kind() == "CustomResourceDefinition" {
            return Ok(());
        }
        let selected = FieldSpec::selecting(specs, &r.obj);
        let updated = rule.update_containers(&mut r.obj).and_then(|()| {
            selected.iter().try_for_each(|fs| {
                fs.apply_unchecked(&mut r.obj, Create::None, &mut |node| rule.update(node))
            })
        });
        updated.map_err(|e| format!("{}: {e}", r.display_id()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(name: &str, new_name: &str, new_tag: &str, digest: &str) -> Image {
        let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
        Image {
            name: opt(name),
            new_name: opt(new_name),
            new_tag: opt(new_tag),
            digest: opt(digest),
            tag_suffix: None,
        }
    }

    #[test]
    fn splits_like_kustomize() {
        assert_eq!(split("nginx"), ("nginx", "", ""));
        assert_eq!(split("nginx:1.2"), ("nginx", "1.2", ""));
        assert_eq!(split("reg:5000/app:1"), ("reg:5000/app", "1", ""));
        assert_eq!(split("app@sha256:abc"), ("app", "", "sha256:abc"));
        assert_eq!(split("reg/app:1@sha256:abc"), ("reg/app", "1", "sha256:abc"));
    }

    #[test]
    fn rewrites_matching_images_only() {
        let r = ImageRule::new(&image("quay.io/strimzi/kafka", "", "0.45.0-kafka-3.9.0", "")).unwrap();
        assert_eq!(
            r.rewrite("quay.io/strimzi/kafka:0.44.0-kafka-3.8.0").as_deref(),
            Some("quay.io/strimzi/kafka:0.45.0-kafka-3.9.0")
        );
        assert_eq!(r.rewrite("quay.io/strimzi/kafka-bridge:1"), None);
        let r = ImageRule::new(&image("nginx", "registry.local/nginx", "", "sha256:123")).unwrap();
        assert_eq!(
            r.rewrite("nginx:1.25").as_deref(),
            Some("registry.local/nginx@sha256:123")
        );
    }
}
