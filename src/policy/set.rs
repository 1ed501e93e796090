//! [`PatternSet`]: a list of registry patterns compiled for matching, built
//! with [`PatternSetBuilder`] (`add` → `build`), as globset's `GlobSet`.

use super::pattern::{Pattern, PatternError};
use super::target::Target;
use super::trie::Trie;
use crate::reference::Reference;

/// How a [`PatternSet`] finds matches.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MatchStrategy {
    /// The trie: cost independent of the number of patterns.
    #[default]
    Trie,
    /// Every pattern in turn: the plain statement of the rules, kept as the
    /// reference the trie is tested against and as the benchmarks' baseline.
    LinearScan,
}

/// Collects patterns and compiles them into a [`PatternSet`].
#[derive(Debug, Clone, Default)]
pub struct PatternSetBuilder {
    sources: Sources,
    patterns: Vec<Pattern>,
}

/// The patterns as written, back to back in one string (one allocation,
/// not one per pattern: a policy may have 100 000).
#[derive(Debug, Clone, Default)]
struct Sources {
    text: String,
    /// End of each pattern's text in `text`.
    ends: Vec<u32>,
}

impl Sources {
    fn push(&mut self, pattern: &str) {
        self.text.push_str(pattern);
        self.ends
            .push(u32::try_from(self.text.len()).unwrap_or(u32::MAX));
    }

    fn get(&self, index: usize) -> Option<&str> {
        let end = *self.ends.get(index)? as usize;
        let start = match index {
            0 => 0,
            _ => *self.ends.get(index - 1)? as usize,
        };
        self.text.get(start..end)
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    fn shrink_to_fit(&mut self) {
        self.text.shrink_to_fit();
        self.ends.shrink_to_fit();
    }
}

impl PatternSetBuilder {
    /// An empty builder.
    pub fn new() -> PatternSetBuilder {
        PatternSetBuilder::default()
    }

    /// Validates and adds one pattern (`DOMAIN[/PATH]` or a Docker Hub
    /// short name); its index is the number of patterns added before it.
    pub fn add(&mut self, pattern: &str) -> Result<&mut PatternSetBuilder, PatternError> {
        let parsed = Pattern::parse(pattern)?;
        self.sources.push(pattern);
        self.patterns.push(parsed);
        Ok(self)
    }

    /// Number of patterns added.
    pub fn len(&self) -> usize {
        self.patterns.len()
    }

    /// Whether no pattern was added.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Compiles the patterns into a trie.
    pub fn build(self) -> PatternSet {
        self.build_with(MatchStrategy::Trie)
    }

    /// Compiles the patterns with the given strategy.
    pub fn build_with(mut self, strategy: MatchStrategy) -> PatternSet {
        self.sources.shrink_to_fit();
        let matcher = match strategy {
            MatchStrategy::Trie => Matcher::Trie(Trie::build(&self.patterns)),
            MatchStrategy::LinearScan => Matcher::Linear(self.patterns),
        };
        PatternSet {
            sources: self.sources,
            matcher,
        }
    }
}

#[derive(Debug, Clone)]
enum Matcher {
    Trie(Trie),
    Linear(Vec<Pattern>),
}

/// An immutable, compiled list of registry patterns.
#[derive(Debug, Clone)]
pub struct PatternSet {
    sources: Sources,
    matcher: Matcher,
}

impl PatternSet {
    /// The index of the first pattern (in the order added) that matches the
    /// image's repository, or `None`. A reference with an empty domain or an
    /// IPv6 host that is not an address matches nothing.
    pub fn matches(&self, reference: &Reference<'_>) -> Option<usize> {
        self.matches_target(&Target::new(reference)?)
    }

    pub(crate) fn matches_target(&self, target: &Target<'_>) -> Option<usize> {
        let forms = std::iter::once(&target.literal).chain(target.hub.as_ref());
        match &self.matcher {
            Matcher::Trie(trie) => {
                let mut best = u32::MAX;
                for form in forms {
                    trie.lookup(form, &mut best);
                }
                (best != u32::MAX).then_some(best as usize)
            }
            Matcher::Linear(patterns) => patterns.iter().position(|p| {
                p.matches(&target.literal) || target.hub.as_ref().is_some_and(|h| p.matches(h))
            }),
        }
    }

    /// The text of pattern `index`, as written.
    pub fn pattern(&self, index: usize) -> Option<&str> {
        self.sources.get(index)
    }

    /// Number of patterns.
    pub fn len(&self) -> usize {
        self.sources.len()
    }

    /// Whether the set has no pattern.
    pub fn is_empty(&self) -> bool {
        self.sources.len() == 0
    }

    /// The strategy the set was built with.
    pub fn strategy(&self) -> MatchStrategy {
        match self.matcher {
            Matcher::Trie(_) => MatchStrategy::Trie,
            Matcher::Linear(_) => MatchStrategy::LinearScan,
        }
    }
}
