//! Giving the memory of a policy compile back to the system.
//!
//! Compiling a large policy allocates several times what the compiled
//! policy keeps (the YAML tree, every pattern parsed, the trie builder),
//! and a reload briefly holds the old and the new policy. What is freed
//! afterwards must not stay resident, counted against the pod's memory
//! limit. A reload therefore compiles on a thread of its own: the
//! runtime's workers go on serving, and the thread's allocation cache goes
//! back to the allocator when it ends. jemalloc's background thread then
//! returns the freed pages to the system about a second after they were
//! freed, also when no request comes (`dirty_decay_ms` and
//! `background_thread` in `.cargo/config.toml`;
//! `loadtest/RESULTS-memory.md` measures it).

/// Runs `compile` on a thread of its own (see the module's comment) and
/// waits for it without blocking the runtime.
pub(crate) async fn on_own_thread<T: Send + 'static>(
    compile: impl FnOnce() -> T + Send + 'static,
) -> Result<T, std::io::Error> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("imagegate-compile".to_owned())
        .spawn(move || {
            let _ = tx.send(compile());
        })?;
    rx.await
        .map_err(|_| std::io::Error::other("the policy compile thread panicked"))
}
