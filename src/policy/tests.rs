//! Unit tests of the policy engine's internals: the trie's cost bounds.
//! Behaviour through the public API is tested in `tests/policy_*.rs`.

use super::Snapshot;
use super::pattern::Pattern;
use super::target::Target;
use super::trie::{Trie, visits};
use crate::reference::Reference;

fn trie(patterns: &[String]) -> Trie {
    let parsed: Vec<Pattern> = patterns
        .iter()
        .map(|p| Pattern::parse(p).unwrap())
        .collect();
    Trie::build(&parsed)
}

fn lookup(trie: &Trie, image: &str) -> (Option<u32>, Vec<u32>) {
    let r = Reference::parse(image).unwrap();
    let t = Target::new(&r).unwrap();
    let mut best = u32::MAX;
    visits::take();
    trie.lookup(&t.literal, &mut best);
    if let Some(hub) = &t.hub {
        trie.lookup(hub, &mut best);
    }
    ((best != u32::MAX).then_some(best), visits::take())
}

/// Every combination of `*` and `a` over `k` path components: the most
/// `*`-heavy set there is. A lookup may not visit a node twice, so its cost
/// is bounded by the trie, never by the 2^k ways of matching.
#[test]
fn each_node_is_visited_at_most_once() {
    let k = 12;
    let mut patterns = Vec::new();
    for mask in 0u32..(1 << k) {
        let comps: Vec<&str> = (0..k)
            .map(|i| if mask & (1 << i) != 0 { "*" } else { "a" })
            .collect();
        // `b` at the end: nothing matches the probe below, so no pruning
        // helps and the walk explores everything it can reach.
        patterns.push(format!("h.io/{}/b", comps.join("/")));
    }
    let t = trie(&patterns);
    let image = format!("h.io/{}/c", vec!["a"; k].join("/"));
    let (found, visited) = lookup(&t, &image);
    assert_eq!(found, None);
    let mut unique = visited.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), visited.len(), "a node was visited twice");
    assert!(visited.len() <= t.node_count());
}

/// A hostile image (thousands of labels and components) costs no more than
/// the trie's height.
#[test]
fn long_images_cost_the_trie_height() {
    let patterns: Vec<String> = vec!["*.*.io/*/*".into(), "a.b.io/x".into()];
    let t = trie(&patterns);
    let host = vec!["a"; 2000].join(".");
    let path = vec!["x"; 120].join("/");
    let (found, visited) = lookup(&t, &format!("{host}.io/{path}"));
    assert_eq!(found, None);
    assert!(visited.len() <= 4, "{}", visited.len());
}

/// Once the lowest-indexed match is found, subtrees that cannot hold a lower
/// index are skipped.
#[test]
fn pruning_stops_at_the_best_match() {
    let mut patterns: Vec<String> = vec!["h.io".into()];
    for i in 0..1000 {
        patterns.push(format!("h.io/p{i}/*"));
    }
    let t = trie(&patterns);
    let (found, visited) = lookup(&t, "h.io/p7/x");
    assert_eq!(found, Some(0));
    assert!(visited.len() <= 4, "{}", visited.len());
}

/// The core reads no file itself: a policy naming one compiles only with
/// the caller's [`SideFiles`], and without them the file is a located error.
#[test]
fn side_files_come_from_the_caller() {
    let key = include_str!("../../tests/fixtures/verify/keys/cosign.pub");
    let text = "apiVersion: imagegate.dev/v1alpha1\nkind: ImagePolicy\nspec:\n  verify:\n    - images: [\"r.example/**\"]\n      keys: [{file: /nonexistent/cosign.pub}]\n";
    let errors = Snapshot::from_yaml(text).unwrap_err();
    let first = errors.iter().next().unwrap();
    assert_eq!(first.line, 6, "{errors}");
    assert!(
        errors.to_string().contains("files are not read here"),
        "{errors}"
    );
    let files =
        std::collections::HashMap::from([("/nonexistent/cosign.pub".to_owned(), key.to_owned())]);
    let snapshot = Snapshot::compile(text, &files).unwrap();
    assert_eq!(
        snapshot.files(),
        [std::path::PathBuf::from("/nonexistent/cosign.pub")]
    );
    assert_eq!(snapshot.supply_chain().rules().len(), 1);
}
