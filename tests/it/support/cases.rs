//! Table cases run by name. A table test runs every case by default; with
//! `IMAGEGATE_CASE` set it runs only the cases whose name contains that
//! text, so that one case of a long table can be run and debugged alone:
//!
//! ```sh
//! IMAGEGATE_CASE='endless body' cargo test --test it hostile
//! ```
//!
//! A table none of whose cases the filter selects runs nothing and says
//! so on stderr (other tables of the same run may hold the case).

/// The environment variable holding the filter.
pub(crate) const VAR: &str = "IMAGEGATE_CASE";

/// Whether the case called `name` runs.
pub(crate) fn selected(name: &str) -> bool {
    match std::env::var(VAR) {
        Ok(filter) if !filter.is_empty() => name.contains(&filter),
        _ => true,
    }
}

/// The cases of `table` that run (see [`selected`]).
pub(crate) fn only<T>(table: &str, cases: Vec<T>, name: impl Fn(&T) -> &str) -> Vec<T> {
    let kept: Vec<T> = cases.into_iter().filter(|c| selected(name(c))).collect();
    if kept.is_empty() {
        #[allow(clippy::print_stderr, reason = "the one word of a filtered run")]
        {
            eprintln!(
                "{VAR}={:?} selects no case of {table}",
                std::env::var(VAR).unwrap_or_default()
            );
        }
    }
    kept
}
