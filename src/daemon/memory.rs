//! Keeping the daemon's resident memory near what it uses. A plan holds every object of a cluster
//! for a moment; glibc's allocator keeps what it freed in per-thread arenas (up to eight per core),
//! so plans run on different threads leave several arenas each as large as a plan, and the process
//! grows although the live data does not. The daemon therefore uses two arenas at most and hands
//! freed memory back to the kernel after each plan. Other C libraries: nothing to do.

/// Limits glibc's arenas; call once, before the async runtime starts its threads.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Returns freed heap memory to the kernel (after a plan or apply).
pub fn release_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim is thread-safe and only releases memory the allocator holds free.
    unsafe {
        libc::malloc_trim(0);
    }
}
