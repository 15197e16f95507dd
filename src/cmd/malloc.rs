//! How the allocator keeps memory for the subcommands that read through the read core
//! (`mount`, `serve`, `get`): one call at start, before other threads exist.
//!
//! It only tunes glibc's malloc; it must not allocate or hold anything itself.

/// Windows are buffers of one size (1 MiB by default) that come and go: most are freed
/// as soon as a reader has been served them (see [`crate::read::served`]), and `get`'s
/// chunks likewise. Served from the heap, a freed window's memory is reused for the
/// next one, already mapped; as separate mappings (glibc's default for a first buffer
/// this large), every window costs a page fault per 4 KiB, about a third of the mount's
/// CPU time in a `cp`. So: windows up to 32 MiB from the heap, up to 64 MiB of free
/// memory kept at its top for the next windows, and one arena, not one per core, so
/// that freed memory is found again by whichever thread allocates next.
pub fn limit_malloc_retention() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only tunes the allocator; called before other threads start.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}
