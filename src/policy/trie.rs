//! The compiled form of a pattern list: a trie keyed by domain labels (right
//! to left), then the port, then path components.
//!
//! Every edge consumes exactly one label, the port, or one component, so a
//! node is reached by one sequence of image parts only. A lookup follows the
//! literal edge and the `*` edge where both exist; it therefore visits each
//! node at most once, and costs O(length of the reference) for ordinary
//! policies, whatever the number of patterns, with no exponential blow-up
//! on hostile images. Edges live in one open-addressing hash table keyed by
//! (parent, kind, text), hashed case-insensitively, so lookups never
//! allocate or lowercase.

use super::pattern::{Comps, Form, Host, HostPattern, Pattern, Segment};

/// No node / no pattern.
const NONE: u32 = u32::MAX;
const ROOT: u32 = 0;

#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Kind {
    Label = 1,
    Port = 2,
    Path = 3,
}

#[derive(Debug, Clone, Copy)]
struct Node {
    /// The `*` child (one label or one component), or [`NONE`].
    star: u32,
    /// Lowest index of a pattern ending here, or [`NONE`].
    terminal: u32,
    /// Lowest pattern index anywhere in this subtree, or [`NONE`]; lets a
    /// lookup skip subtrees that cannot improve on what it already found.
    best: u32,
}

#[derive(Debug, Clone, Copy)]
struct Edge {
    hash: u32,
    parent: u32,
    child: u32,
    kind: u8,
    key_start: u32,
    key_len: u32,
}

/// An immutable pattern trie (built once, read by many threads).
#[derive(Debug, Clone)]
pub(crate) struct Trie {
    nodes: Vec<Node>,
    edges: Vec<Edge>,
    /// Indices into `edges`, [`NONE`] when free; length is a power of two.
    slots: Vec<u32>,
    /// Edge texts, lower case, back to back.
    keys: String,
}

impl Trie {
    /// Builds the trie; pattern `i` of the slice reports index `i`.
    pub(crate) fn build(patterns: &[Pattern]) -> Trie {
        let mut trie = Trie {
            nodes: vec![Node {
                star: NONE,
                terminal: NONE,
                best: NONE,
            }],
            edges: Vec::new(),
            slots: vec![NONE; 64],
            keys: String::new(),
        };
        for (index, pattern) in patterns.iter().enumerate() {
            let index = u32::try_from(index).unwrap_or(NONE - 1);
            trie.insert(pattern, index);
        }
        trie.compute_best();
        trie
    }

    fn insert(&mut self, pattern: &Pattern, index: u32) {
        let mut node = ROOT;
        match &pattern.host {
            HostPattern::Labels(labels) => {
                for label in labels.iter().rev() {
                    node = self.child(node, Kind::Label, label);
                }
            }
            HostPattern::Ipv6(key) => {
                node = self.literal_child(node, Kind::Label, key);
            }
        }
        node = self.literal_child(node, Kind::Port, &pattern.port);
        for segment in &pattern.path {
            node = self.child(node, Kind::Path, segment);
        }
        let slot = &mut self.nodes[node as usize].terminal;
        *slot = (*slot).min(index);
    }

    fn child(&mut self, parent: u32, kind: Kind, segment: &Segment) -> u32 {
        match segment {
            Segment::Literal(text) => self.literal_child(parent, kind, text),
            Segment::Star => {
                let star = self.nodes[parent as usize].star;
                if star != NONE {
                    return star;
                }
                let star = self.new_node();
                self.nodes[parent as usize].star = star;
                star
            }
        }
    }

    fn new_node(&mut self) -> u32 {
        let id = u32::try_from(self.nodes.len()).unwrap_or(NONE);
        self.nodes.push(Node {
            star: NONE,
            terminal: NONE,
            best: NONE,
        });
        id
    }

    fn literal_child(&mut self, parent: u32, kind: Kind, text: &str) -> u32 {
        if let Some(child) = self.edge(parent, kind, text) {
            return child;
        }
        if (self.edges.len() + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let child = self.new_node();
        let edge = Edge {
            hash: hash(parent, kind, text),
            parent,
            child,
            kind: kind as u8,
            key_start: u32::try_from(self.keys.len()).unwrap_or(NONE),
            key_len: u32::try_from(text.len()).unwrap_or(NONE),
        };
        self.keys.push_str(text);
        let id = u32::try_from(self.edges.len()).unwrap_or(NONE);
        self.edges.push(edge);
        self.place(id);
        child
    }

    fn place(&mut self, id: u32) {
        let mask = self.slots.len() - 1;
        let mut i = self.edges[id as usize].hash as usize & mask;
        while self.slots[i] != NONE {
            i = (i + 1) & mask;
        }
        self.slots[i] = id;
    }

    fn grow(&mut self) {
        self.slots = vec![NONE; self.slots.len() * 2];
        for id in 0..self.edges.len() {
            self.place(u32::try_from(id).unwrap_or(NONE));
        }
    }

    /// Fills `best` bottom-up. Children always have larger ids than their
    /// parent, so one reverse pass over the nodes is a post-order.
    fn compute_best(&mut self) {
        for node in &mut self.nodes {
            node.best = node.terminal;
        }
        let mut parent_of = vec![NONE; self.nodes.len()];
        for edge in &self.edges {
            parent_of[edge.child as usize] = edge.parent;
        }
        for (id, node) in self.nodes.iter().enumerate() {
            if node.star != NONE {
                parent_of[node.star as usize] = u32::try_from(id).unwrap_or(NONE);
            }
        }
        for id in (1..self.nodes.len()).rev() {
            let parent = parent_of[id];
            if parent != NONE {
                let best = self.nodes[id].best;
                let slot = &mut self.nodes[parent as usize].best;
                *slot = (*slot).min(best);
            }
        }
    }

    fn edge(&self, parent: u32, kind: Kind, text: &str) -> Option<u32> {
        let h = hash(parent, kind, text);
        let mask = self.slots.len() - 1;
        let mut i = h as usize & mask;
        loop {
            let id = self.slots[i];
            if id == NONE {
                return None;
            }
            let e = &self.edges[id as usize];
            if e.hash == h && e.parent == parent && e.kind == kind as u8 {
                let start = e.key_start as usize;
                let key = self.keys.get(start..start + e.key_len as usize).unwrap_or("");
                if key.eq_ignore_ascii_case(text) {
                    return Some(e.child);
                }
            }
            i = (i + 1) & mask;
        }
    }

    /// Lowers `best` to the lowest index of a pattern matching `form`.
    pub(crate) fn lookup(&self, form: &Form<'_>, best: &mut u32) {
        match form.host {
            Host::Name(name) => self.walk_labels(ROOT, name.rsplit('.'), true, form, best),
            // An IPv6 literal is one opaque label that `*` does not match.
            Host::Ipv6(key) => {
                self.walk_labels(ROOT, std::iter::once(key.as_str()), false, form, best);
            }
        }
    }

    fn walk_labels<'k, I>(&self, node: u32, mut labels: I, star: bool, form: &Form<'_>, best: &mut u32)
    where
        I: Iterator<Item = &'k str> + Clone,
    {
        let n = self.nodes[node as usize];
        if n.best >= *best {
            return;
        }
        match labels.next() {
            None => {
                if let Some(child) = self.edge(node, Kind::Port, form.port) {
                    self.walk_path(child, form.components(), best);
                }
            }
            Some(label) => {
                if let Some(child) = self.edge(node, Kind::Label, label) {
                    self.walk_labels(child, labels.clone(), star, form, best);
                }
                if star && n.star != NONE {
                    self.walk_labels(n.star, labels, star, form, best);
                }
            }
        }
    }

    fn walk_path(&self, node: u32, mut comps: Comps<'_>, best: &mut u32) {
        let n = self.nodes[node as usize];
        if n.best >= *best {
            return;
        }
        if n.terminal < *best {
            *best = n.terminal;
            if n.best == n.terminal {
                return;
            }
        }
        if let Some(comp) = comps.next() {
            if let Some(child) = self.edge(node, Kind::Path, comp) {
                self.walk_path(child, comps.clone(), best);
            }
            if n.star != NONE {
                self.walk_path(n.star, comps, best);
            }
        }
    }

    /// Number of nodes (for tests and sizing).
    #[cfg(test)]
    pub(crate) fn node_count(&self) -> usize {
        self.nodes.len()
    }
}

/// FNV-1a over (parent, kind, lower-cased text).
fn hash(parent: u32, kind: Kind, text: &str) -> u32 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in parent.to_le_bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(PRIME);
    }
    h = (h ^ kind as u64).wrapping_mul(PRIME);
    for b in text.bytes() {
        h = (h ^ u64::from(b.to_ascii_lowercase())).wrapping_mul(PRIME);
    }
    (h ^ (h >> 32)) as u32
}
