//! Giving the memory of a policy compile back to the system.
//!
//! Compiling a large policy allocates several times what the compiled
//! policy keeps (the YAML tree, every pattern parsed, the trie builder).
//! Two things keep that garbage resident, counted against the pod's memory
//! limit, after a reload of a 100 000-pattern policy: the empty pages
//! mimalloc caches in the heap of the thread that freed them (a runtime
//! worker would keep them until it allocates enough), and the purge delay
//! (1 s) after which freed memory goes back to the system only when some
//! later free notices. So a reload compiles on a thread of its own, whose
//! heap is given up when it ends, and [`release_soon`] then frees a page
//! once the delay has passed, which lets the allocator purge what is free.

use std::time::Duration;

/// mimalloc's default purge delay, plus a margin.
const AFTER: Duration = Duration::from_millis(1_200);

/// Big enough to be a page of its own, freed at once.
const PAGE_BYTES: usize = 1 << 20;

/// Arranges for freed memory to be returned to the system soon.
pub(crate) fn release_soon() {
    let spawned = std::thread::Builder::new()
        .name("imagegate-release".to_owned())
        .spawn(|| {
            std::thread::sleep(AFTER);
            // Several rounds: pages freed late (the previous policy, dropped
            // when its last reader lets go) have later purge deadlines.
            for _ in 0..4 {
                let page: Vec<u8> = Vec::with_capacity(PAGE_BYTES);
                drop(std::hint::black_box(page));
                std::thread::sleep(AFTER);
            }
        });
    if let Err(e) = spawned {
        tracing::debug!(error = %e, "cannot start the memory release thread");
    }
}

/// Runs `compile` on a thread of its own (see the module's comment) and
/// waits for it without blocking the runtime; then [`release_soon`].
pub(crate) async fn on_own_thread<T: Send + 'static>(
    compile: impl FnOnce() -> T + Send + 'static,
) -> Result<T, std::io::Error> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("imagegate-compile".to_owned())
        .spawn(move || {
            let _ = tx.send(compile());
        })?;
    let done = rx
        .await
        .map_err(|_| std::io::Error::other("the policy compile thread panicked"));
    release_soon();
    done
}
