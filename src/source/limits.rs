//! How much of a repository kgitops reads: the git tree entries one revision's tree may load and
//! the bytes of files one render may read. Both bound memory and time on a hostile or careless
//! commit (documented for operators in docs/limits.md).
//!
//! The limits are one process-wide setting, chosen once at start-up (the CLI's
//! `--max-render-input`/`--max-tree-entries`, the daemon's `limits:` configuration) and taken by
//! every tree and render opened after that.

use std::sync::atomic::{AtomicUsize, Ordering};

/// What a tree or a render may read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InputLimits {
    /// Most git tree entries one revision's tree loads, over every directory read through it
    /// (each directory once, however many renders read it).
    pub max_tree_entries: usize,
    /// Most bytes of files one render reads, a file counted each time it is read (a generator
    /// naming one file thirty times holds thirty copies).
    pub max_render_input: usize,
}

impl InputLimits {
    /// 250,000 entries: a render reads only the directories on its paths, a few hundred entries
    /// in a real platform repository; the loaded entries take about 64 bytes each (16 MB at the
    /// limit).
    pub const DEFAULT_MAX_TREE_ENTRIES: usize = 250_000;
    /// 12 MiB: about twice the input of the 20,000-object render benchmark (6.5 MiB). A render's
    /// peak memory is some 25 to 30 times its manifest input (10 MiB of Deployments peaked at
    /// 287 MiB), so a render at the budget stays within the shipped pod's 512Mi with room; the
    /// daemon renders one cluster at a time.
    pub const DEFAULT_MAX_RENDER_INPUT: usize = 12 << 20;

    pub const DEFAULT: InputLimits = InputLimits {
        max_tree_entries: InputLimits::DEFAULT_MAX_TREE_ENTRIES,
        max_render_input: InputLimits::DEFAULT_MAX_RENDER_INPUT,
    };
}

impl Default for InputLimits {
    fn default() -> Self {
        InputLimits::DEFAULT
    }
}

static MAX_TREE_ENTRIES: AtomicUsize = AtomicUsize::new(InputLimits::DEFAULT_MAX_TREE_ENTRIES);
static MAX_RENDER_INPUT: AtomicUsize = AtomicUsize::new(InputLimits::DEFAULT_MAX_RENDER_INPUT);

/// Sets the limits for every tree and render opened from now on.
pub fn set(limits: InputLimits) {
    MAX_TREE_ENTRIES.store(limits.max_tree_entries, Ordering::Relaxed);
    MAX_RENDER_INPUT.store(limits.max_render_input, Ordering::Relaxed);
}

/// The limits in force.
pub fn current() -> InputLimits {
    InputLimits {
        max_tree_entries: MAX_TREE_ENTRIES.load(Ordering::Relaxed),
        max_render_input: MAX_RENDER_INPUT.load(Ordering::Relaxed),
    }
}

/// Parses a byte count as Kubernetes quantities write it: `67108864`, `64Mi`, `512Ki`, `1Gi`,
/// or with decimal units `64M`, `1G` (a `B` after the unit is accepted: `64MiB`).
pub fn parse_bytes(text: &str) -> Result<usize, String> {
    let bad = || format!("invalid size '{text}': write bytes, or a number with Ki, Mi, Gi (or K, M, G)");
    let trimmed = text.trim();
    let unit_at = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    if unit_at == 0 {
        return Err(bad());
    }
    let n: usize = trimmed[..unit_at].parse().map_err(|_| bad())?;
    let unit = trimmed[unit_at..]
        .strip_suffix('B')
        .unwrap_or(&trimmed[unit_at..]);
    let factor: usize = match unit {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "K" | "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        _ => return Err(bad()),
    };
    n.checked_mul(factor).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_read_as_kubernetes_quantities() {
        assert_eq!(parse_bytes("67108864"), Ok(64 << 20));
        assert_eq!(parse_bytes("64Mi"), Ok(64 << 20));
        assert_eq!(parse_bytes("64MiB"), Ok(64 << 20));
        assert_eq!(parse_bytes("1Gi"), Ok(1 << 30));
        assert_eq!(parse_bytes("512Ki"), Ok(512 << 10));
        assert_eq!(parse_bytes("10M"), Ok(10_000_000));
        for bad in ["", "Mi", "64 Mi", "-1", "64mb", "99999999999999999999999Gi"] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
    }
}
