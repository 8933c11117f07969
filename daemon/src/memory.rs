//! Giving freed memory back to the system after a burst of connections. glibc's allocator
//! keeps freed heap pages for reuse, so a daemon that once served a thousand clients would
//! otherwise stay that size all day (measured by the load test: 27 MB idle, 70 MB after).

use std::sync::Arc;
use std::time::Duration;

/// How often the daemon looks whether it went idle after a burst.
const LOOK_EVERY: Duration = Duration::from_secs(5);
/// A burst: at least this many connections open at once since the last look.
const BURST: usize = 32;

/// Returns the allocator's free pages to the system.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn give_back() {
    // SAFETY: malloc_trim takes no pointers and only walks the allocator's own free lists,
    // under the allocator's locks; glibc allows it from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Blocks of this size and up get mappings of their own, unmapped when freed.
const MMAP_THRESHOLD: i32 = 4 << 20;
/// Free memory at the top of the main heap kept for reuse before it is returned.
const TRIM_THRESHOLD: i32 = 8 << 20;

/// Keeps large blocks (the file vault's KDF takes 19 MiB per unlock) in mappings of their own,
/// unmapped when freed. Left to itself, glibc raises its mmap threshold once such a block is
/// freed, so every later unlock's block comes from the vault thread's arena, and stays there:
/// `malloc_trim` does not shrink a thread arena's top. The load test measured ~19 MiB kept
/// after an unlock this way. Setting the thresholds turns that raising off; they are set
/// well above ordinary buffers, which at glibc's own 128 KiB would each be mapped and
/// unmapped again.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn keep_large_blocks_mapped() {
    // SAFETY: mallopt only sets allocator parameters; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    }
}

/// Other allocators do not keep freed large blocks.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn keep_large_blocks_mapped() {}

/// Other allocators return memory by themselves.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn give_back() {}

/// Gives memory back once all connections of a burst have closed. Runs until the daemon stops.
pub async fn after_bursts(agent: Arc<crate::agent::Agent>) {
    let mut shutdown = agent.shutdown_signal();
    let mut tick = tokio::time::interval(LOOK_EVERY);
    loop {
        tokio::select! {
            _ = crate::agent::stopped(&mut shutdown) => return,
            _ = tick.tick() => {}
        }
        if agent.connection_count() == 0 && agent.take_peak_connections() >= BURST {
            give_back();
            tracing::debug!("gave freed memory back after a burst of connections");
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn giving_back_is_safe_to_call_any_time() {
        let v: Vec<Vec<u8>> = (0..1000).map(|i| vec![0u8; 1000 + i]).collect();
        drop(v);
        super::give_back();
        super::give_back();
    }
}
