//! Tuning of glibc's allocator for the two ways the process runs. Other C libraries: nothing to do.
//! The container image is a glibc build on a glibc base (deploy/Dockerfile runs
//! scripts/build-image-binary, which refuses a binary not linked against glibc), so this tuning is
//! in effect where users run kgitops, as in the benchmarks (docs/memory.md).
//!
//! The daemon keeps its resident memory near what it uses. A plan holds every object of a cluster
//! for a moment; glibc's allocator keeps what it freed in per-thread arenas (up to eight per core),
//! so plans run on different threads leave several arenas each as large as a plan, and the process
//! grows although the live data does not. The daemon therefore uses two arenas at most and hands
//! freed memory back to the kernel after each plan.
//!
//! One-shot commands (render, diff, validate, ...) build all their objects, print and exit: the
//! heap only grows, and growing it in large steps saves tens of thousands of system calls in a
//! large render.

/// Limits glibc's arenas; call once, before the async runtime starts its threads.
#[allow(unsafe_code)] // each unsafe block below says why it is sound (SAFETY)
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Returns freed heap memory to the kernel (after a plan or apply).
#[allow(unsafe_code)] // each unsafe block below says why it is sound (SAFETY)
pub fn release_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim is thread-safe and only releases memory the allocator holds free.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The heap grows in steps of this much (instead of glibc's 128 KiB) in one-shot commands.
pub const ONE_SHOT_HEAP_STEP: usize = 32 * 1024 * 1024;

/// Lets the heap grow in [`ONE_SHOT_HEAP_STEP`]s; for commands that exit when done (memory is
/// only reserved by this, and used as the objects need it). Call before other threads start.
#[allow(unsafe_code)] // each unsafe block below says why it is sound (SAFETY)
pub fn grow_in_large_steps() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_TOP_PAD, ONE_SHOT_HEAP_STEP as libc::c_int);
    }
}
