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

use super::pattern::{HostPattern, MAX_LABEL_LEN, Pattern, Segment};
use super::target::{Comps, Form, Host, Ipv6Key, RevLabels};
use crate::reference::words::{load, mix};

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

const EMPTY_NODE: Node = Node {
    star: NONE,
    terminal: NONE,
    best: NONE,
};

/// One literal edge. The text's first eight bytes ride along, so a text of
/// up to 8 bytes (most labels and path components) is compared without
/// touching the key store.
#[derive(Debug, Clone, Copy)]
struct Edge {
    /// The first 8 bytes of the text, zero-padded.
    head: u64,
    parent: u32,
    child: u32,
    key_start: u32,
    key_len: u16,
    kind: u8,
}

/// A slot of the open-addressing table: the edge's hash (compared before
/// the edge is read) and its index, [`NONE`] when free.
#[derive(Debug, Clone, Copy)]
struct Slot {
    hash: u32,
    edge: u32,
}

const FREE: Slot = Slot {
    hash: 0,
    edge: NONE,
};

/// An immutable pattern trie (built once, read by many threads).
///
/// Sized for large policies: per edge 24 bytes plus at most 24 bytes of
/// table (8-byte slots, load at least 1/3), per node 12 bytes, and the
/// texts once; about 100 bytes per pattern of 100 000 distinct ones.
#[derive(Debug, Clone)]
pub(crate) struct Trie {
    nodes: Vec<Node>,
    edges: Vec<Edge>,
    /// Open addressing, linear probing, load at most 2/3; the length is a
    /// power of two.
    slots: Vec<Slot>,
    /// Edge texts, lower case, back to back.
    keys: String,
}

/// The trie while patterns are added: edges in insertion order, indexed by
/// a table of positions that grows as needed.
struct Builder {
    nodes: Vec<Node>,
    edges: Vec<Edge>,
    hashes: Vec<u32>,
    slots: Vec<u32>,
    keys: String,
}

impl Trie {
    /// Builds the trie; pattern `i` of the slice reports index `i`.
    pub(crate) fn build(patterns: &[Pattern]) -> Trie {
        let mut b = Builder {
            nodes: vec![EMPTY_NODE],
            edges: Vec::new(),
            hashes: Vec::new(),
            slots: vec![NONE; 64],
            keys: String::new(),
        };
        for (index, pattern) in patterns.iter().enumerate() {
            let index = u32::try_from(index).unwrap_or(NONE - 1);
            b.insert(pattern, index);
        }
        b.finish()
    }

    /// The child reached from `parent` by the edge `(kind, text)`, and its
    /// node.
    #[inline]
    fn edge(&self, parent: u32, kind: Kind, text: &[u8]) -> Option<(u32, Node)> {
        let (h, head) = hash(parent, kind, text);
        let mask = self.slots.len() - 1;
        let mut i = h as usize & mask;
        loop {
            let slot = self.slots[i];
            if slot.edge == NONE {
                return None;
            }
            if slot.hash == h {
                let e = &self.edges[slot.edge as usize];
                if e.parent == parent
                    && e.kind == kind as u8
                    && usize::from(e.key_len) == text.len()
                    && e.head == head
                    && (text.len() <= 8 || self.key(e) == text)
                {
                    return Some((e.child, self.nodes[e.child as usize]));
                }
            }
            i = (i + 1) & mask;
        }
    }

    fn key(&self, e: &Edge) -> &[u8] {
        let start = e.key_start as usize;
        self.keys
            .as_bytes()
            .get(start..start + usize::from(e.key_len))
            .unwrap_or(&[])
    }

    /// Lowers `best` to the lowest index of a pattern matching `form`.
    pub(crate) fn lookup(&self, form: &Form<'_>, best: &mut u32) {
        let root = self.nodes[ROOT as usize];
        match form.host {
            Host::Name(name) => {
                self.walk_labels(ROOT, root, RevLabels::new(name), true, form, best);
            }
            // An IPv6 literal is one opaque label that `*` does not match.
            Host::Ipv6(addr) => {
                let key = Ipv6Key::new(addr);
                let label = std::iter::once(key.as_str());
                self.walk_labels(ROOT, root, label, false, form, best);
            }
        }
    }

    fn walk_labels<'k, I>(
        &self,
        id: u32,
        node: Node,
        mut labels: I,
        star: bool,
        form: &Form<'_>,
        best: &mut u32,
    ) where
        I: Iterator<Item = &'k str> + Clone,
    {
        #[cfg(test)]
        visits::count(id);
        if node.best >= *best {
            return;
        }
        match labels.next() {
            None => {
                if let Some((child, node)) = self.edge(id, Kind::Port, form.port.as_bytes()) {
                    self.walk_path(child, node, form.components(), best);
                }
            }
            Some(label) => {
                // Labels are stored in lower case; an upper-case label is
                // folded on the stack. A label longer than any stored one
                // can only match `*`.
                let mut buf = [0u8; MAX_LABEL_LEN];
                let key = if label.len() > MAX_LABEL_LEN {
                    None
                } else if label.bytes().any(|b| b.is_ascii_uppercase()) {
                    let lower = &mut buf[..label.len()];
                    lower.copy_from_slice(label.as_bytes());
                    lower.make_ascii_lowercase();
                    Some(&*lower)
                } else {
                    Some(label.as_bytes())
                };
                if let Some((child, node)) = key.and_then(|k| self.edge(id, Kind::Label, k)) {
                    self.walk_labels(child, node, labels.clone(), star, form, best);
                }
                if star && node.star != NONE {
                    let child = self.nodes[node.star as usize];
                    self.walk_labels(node.star, child, labels, star, form, best);
                }
            }
        }
    }

    fn walk_path(&self, id: u32, node: Node, mut comps: Comps<'_>, best: &mut u32) {
        #[cfg(test)]
        visits::count(id);
        if node.best >= *best {
            return;
        }
        if node.terminal < *best {
            *best = node.terminal;
            if node.best == node.terminal {
                return;
            }
        }
        if let Some(comp) = comps.next() {
            // Path components are lower case by the reference grammar.
            if let Some((child, node)) = self.edge(id, Kind::Path, comp.as_bytes()) {
                self.walk_path(child, node, comps.clone(), best);
            }
            if node.star != NONE {
                let child = self.nodes[node.star as usize];
                self.walk_path(node.star, child, comps, best);
            }
        }
    }

    /// Number of nodes (for tests and sizing).
    #[cfg(test)]
    pub(crate) fn node_count(&self) -> usize {
        self.nodes.len()
    }
}

impl Builder {
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
        self.nodes.push(EMPTY_NODE);
        id
    }

    fn literal_child(&mut self, parent: u32, kind: Kind, text: &str) -> u32 {
        let (h, head) = hash(parent, kind, text.as_bytes());
        let mask = self.slots.len() - 1;
        let mut i = h as usize & mask;
        loop {
            let id = self.slots[i];
            if id == NONE {
                break;
            }
            let e = &self.edges[id as usize];
            if self.hashes[id as usize] == h
                && e.parent == parent
                && e.kind == kind as u8
                && e.head == head
            {
                let start = e.key_start as usize;
                if self.keys.get(start..start + usize::from(e.key_len)) == Some(text) {
                    return e.child;
                }
            }
            i = (i + 1) & mask;
        }
        let child = self.new_node();
        self.edges.push(Edge {
            head,
            parent,
            child,
            key_start: u32::try_from(self.keys.len()).unwrap_or(NONE),
            key_len: u16::try_from(text.len()).unwrap_or(u16::MAX),
            kind: kind as u8,
        });
        self.hashes.push(h);
        self.keys.push_str(text);
        if self.edges.len() * 2 > self.slots.len() {
            self.slots = vec![NONE; self.slots.len() * 2];
            for id in 0..self.edges.len() {
                place(&mut self.slots, &self.hashes, id);
            }
        } else {
            place(&mut self.slots, &self.hashes, self.edges.len() - 1);
        }
        child
    }

    /// Fills `best` bottom-up, then builds the final table at its final
    /// size. Children always have larger ids than their parent, so one
    /// reverse pass over the nodes is a post-order.
    fn finish(mut self) -> Trie {
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
        drop(parent_of);
        drop(std::mem::take(&mut self.slots));
        let size = (self.edges.len() + self.edges.len() / 2 + 1)
            .next_power_of_two()
            .max(16);
        let mut slots = vec![FREE; size];
        for (id, &hash) in self.hashes.iter().enumerate() {
            let mut i = hash as usize & (size - 1);
            while slots[i].edge != NONE {
                i = (i + 1) & (size - 1);
            }
            slots[i] = Slot {
                hash,
                edge: u32::try_from(id).unwrap_or(NONE),
            };
        }
        self.nodes.shrink_to_fit();
        self.edges.shrink_to_fit();
        self.keys.shrink_to_fit();
        Trie {
            nodes: self.nodes,
            edges: self.edges,
            slots,
            keys: self.keys,
        }
    }
}

fn place(slots: &mut [u32], hashes: &[u32], id: usize) {
    let mask = slots.len() - 1;
    let mut i = hashes[id] as usize & mask;
    while slots[i] != NONE {
        i = (i + 1) & mask;
    }
    slots[i] = u32::try_from(id).unwrap_or(NONE);
}

/// A multiply-rotate hash of (parent, kind, text), eight bytes at a time,
/// and the text's first eight bytes (zero-padded) for a quick comparison.
/// The texts hashed are lower case already, so no case folding happens
/// here.
#[inline]
fn hash(parent: u32, kind: Kind, text: &[u8]) -> (u32, u64) {
    let mut h = mix(
        0,
        (u64::from(parent) << 8) | kind as u64 | ((text.len() as u64) << 40),
    );
    let head = load(text);
    h = mix(h, head);
    let mut rest = text.get(8..).unwrap_or(&[]);
    while !rest.is_empty() {
        h = mix(h, load(rest));
        rest = rest.get(8..).unwrap_or(&[]);
    }
    ((h ^ (h >> 32)) as u32, head)
}

/// Test-only record of the nodes a lookup visits.
#[cfg(test)]
pub(crate) mod visits {
    use std::cell::RefCell;

    thread_local! {
        static VISITED: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
    }

    pub(super) fn count(node: u32) {
        VISITED.with(|v| v.borrow_mut().push(node));
    }

    /// The nodes visited since the last call.
    pub(crate) fn take() -> Vec<u32> {
        VISITED.with(|v| std::mem::take(&mut *v.borrow_mut()))
    }
}
