//! The calling-context tree: pure bookkeeping, no Python.
//!
//! A node is "this call site, reached through this chain of call sites"; each root is one
//! thread. Every reported call pushes a [`Frame`] on its thread's [`Stack`] and pops it when
//! it ends, adding its time to the node: calls, inclusive ticks, self ticks (the call's
//! time minus the time of the reported calls made inside it), the longest call, and how
//! many raised.
//!
//! **Recursion** is collapsed: a call at a site that already appears on the path from the
//! root (the node's ancestors, itself included) goes to that ancestor's node instead of a
//! new child, so the tree stays as large as the number of distinct call-site paths without
//! a repeated site. A call whose node is already running on the same stack (a recursive
//! re-entry) counts in `calls`, `self`, `max` and `raised`; its inclusive time is *not*
//! added again to the node's total (it is inside the outer call's time already), so no
//! total counts the same nanosecond twice, and the self times of all nodes add up to the
//! time spent in reported calls.
//!
//! Links (parent, site) → target node are found once and kept: a per-node one-entry cache
//! keyed by an opaque word (the site-id object's address) answers a loop's repeated call
//! with one compare, a hash map everything else.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use crate::id_hash::IdHasher;

/// Index of a node in [`Tree::nodes`].
pub type NodeId = u32;

/// Totals of one node (all times in clock ticks).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub calls: u64,
    pub ticks: u64,
    pub self_ticks: u64,
    pub max_ticks: u64,
    pub raised: u64,
    /// Calls counted without timing: nested deeper than the reporting limit.
    pub untimed: u64,
    /// A node's: the inclusive ticks of its recursive re-entries, which `ticks` leaves out
    /// (they are inside the outer call's); with `ticks`, what its site's flat row counts,
    /// every call's inclusive time (the profiler sums nodes into flat rows when read).
    pub rec_ticks: u64,
}

impl Totals {
    /// Count one ended call of `frame`, `ticks` long (what [`Tree::add`] and [`Tree::end`]
    /// both do to the call's node).
    #[inline(always)]
    fn count(&mut self, frame: &Frame, ticks: u64, raised: bool) {
        self.calls += 1;
        if frame.recursive {
            self.rec_ticks += ticks;
        } else {
            self.ticks += ticks;
        }
        self.self_ticks += ticks.saturating_sub(frame.child_ticks);
        if ticks > self.max_ticks {
            self.max_ticks = ticks;
        }
        self.raised += u64::from(raised);
    }
}

#[derive(Debug, Clone)]
pub struct Node {
    /// Dense index of the site in the profile's flat table; `u32::MAX` for a root.
    pub site: u32,
    /// Parent node; `u32::MAX` for a root.
    pub parent: NodeId,
    /// Index of the root (thread) this node belongs to.
    pub root: u32,
    pub totals: Totals,
    pub mark: Mark,
    /// Calls of this node in progress on some stack.
    pub active: u32,
    /// One-entry cache of [`Tree::link`]: the key last looked up here and its answer.
    last_key: usize,
    last_link: Link,
}

/// Where a call at some site under some node goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    pub node: NodeId,
}

/// One reported call in progress.
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    pub node: NodeId,
    pub start: u64,
    /// Ticks of the reported calls that ended inside this one.
    pub child_ticks: u64,
    /// The node was already running when this call began: its time is inside that call's.
    pub recursive: bool,
}

/// A call [`Tree::end`] ended.
#[derive(Debug, Clone, Copy)]
pub struct Ended {
    pub node: NodeId,
    pub start: u64,
    /// Its length.
    pub ticks: u64,
}

/// The reported calls in progress on one thread, innermost last; the root frame stays.
#[derive(Debug, Clone)]
pub struct Stack {
    pub frames: Vec<Frame>,
}

impl Stack {
    pub fn new(root_node: NodeId) -> Stack {
        Stack {
            frames: vec![Frame {
                node: root_node,
                start: 0,
                child_ticks: 0,
                recursive: false,
            }],
        }
    }

    #[inline(always)]
    pub fn top(&self) -> NodeId {
        // The root frame is never popped.
        self.frames.last().map_or(0, |f| f.node)
    }

    /// [`Stack::top`] without the check for an empty stack, on the per-call path.
    ///
    /// # Safety
    /// The stack is not empty: made by [`Stack::new`] and popped only by [`Tree`]'s
    /// methods, which leave the root frame.
    #[inline(always)]
    unsafe fn top_unchecked(&self) -> NodeId {
        debug_assert!(!self.frames.is_empty());
        // SAFETY: as this function's contract.
        unsafe { self.frames.get_unchecked(self.frames.len() - 1).node }
    }
}

type LinkMap = HashMap<(NodeId, u32), Link, BuildHasherDefault<IdHasher>>;

#[derive(Debug, Default)]
pub struct Tree {
    pub nodes: Vec<Node>,
    links: LinkMap,
}

impl Tree {
    /// A new root (a thread); returns its node.
    pub fn add_root(&mut self, root: u32) -> NodeId {
        self.push_node(u32::MAX, u32::MAX, root)
    }

    fn push_node(&mut self, site: u32, parent: NodeId, root: u32) -> NodeId {
        let id = self.nodes.len() as NodeId;
        self.nodes.push(Node {
            site,
            parent,
            root,
            totals: Totals::default(),
            mark: Mark::default(),
            active: 0,
            last_key: 0,
            last_link: Link { node: 0 },
        });
        id
    }

    /// Where a call at `site` made under `parent` goes, answered from the node's one-entry
    /// cache when `key` (a nonzero word standing for the site) matches (the tests' view of
    /// the cache [`Tree::child_of_top`] reads).
    #[cfg(test)]
    pub fn cached_link(&self, parent: NodeId, key: usize) -> Option<Link> {
        let n = &self.nodes[parent as usize];
        (n.last_key == key && key != 0).then_some(n.last_link)
    }

    /// Where a call at `site` made under the stack's innermost call goes, answered from
    /// that node's one-entry cache when `key` (a nonzero word standing for the site)
    /// matches, else found (or the child created) by [`Tree::link`]. What every reported
    /// call asks: no bounds checks on the cached path.
    ///
    /// # Safety
    /// `stack` is not empty and its frames' nodes are this tree's (a stack made for this
    /// tree and changed only by its methods).
    #[inline(always)]
    pub unsafe fn child_of_top(&mut self, stack: &Stack, site: u32, key: usize) -> Link {
        debug_assert!(key != 0);
        // SAFETY: as this function's contract.
        let top = unsafe { stack.top_unchecked() };
        debug_assert!((top as usize) < self.nodes.len());
        // SAFETY: `top` is one of this tree's nodes, and nodes are never removed.
        let n = unsafe { self.nodes.get_unchecked(top as usize) };
        if n.last_key == key {
            return n.last_link;
        }
        self.link_cold(top, site, key)
    }

    #[cold]
    #[inline(never)]
    fn link_cold(&mut self, parent: NodeId, site: u32, key: usize) -> Link {
        self.link(parent, site, key)
    }

    /// Where a call at `site` made under `parent` goes (creating the child on first use),
    /// remembered under `key` in the parent's cache.
    pub fn link(&mut self, parent: NodeId, site: u32, key: usize) -> Link {
        let link = match self.links.get(&(parent, site)) {
            Some(link) => *link,
            None => {
                let node = match self.ancestor_with(parent, site) {
                    Some(node) => node,
                    None => {
                        let root = self.nodes[parent as usize].root;
                        self.push_node(site, parent, root)
                    }
                };
                let link = Link { node };
                self.links.insert((parent, site), link);
                link
            }
        };
        let n = &mut self.nodes[parent as usize];
        n.last_key = key;
        n.last_link = link;
        link
    }

    fn ancestor_with(&self, mut node: NodeId, site: u32) -> Option<NodeId> {
        while node != u32::MAX {
            let n = &self.nodes[node as usize];
            if n.site == site {
                return Some(node);
            }
            node = n.parent;
        }
        None
    }

    /// Add one ended call: `ticks` long, `child_ticks` of it in reported calls inside.
    #[inline(always)]
    pub fn add(&mut self, w: &mut Windows, frame: &Frame, ticks: u64, raised: bool) {
        let n = &mut self.nodes[frame.node as usize];
        w.touch(Kind::Nodes, frame.node, &mut n.totals, &mut n.mark);
        n.totals.count(frame, ticks, raised);
    }

    /// Count a call that was not timed (made deeper than the reporting limit).
    pub fn add_untimed(&mut self, w: &mut Windows, node: NodeId) {
        let n = &mut self.nodes[node as usize];
        w.touch(Kind::Nodes, node, &mut n.totals, &mut n.mark);
        let t = &mut n.totals;
        t.calls += 1;
        t.untimed += 1;
    }
}

/// What the profilers' windows need of a node or site: when its totals were last saved.
#[derive(Debug, Default, Clone, Copy)]
pub struct Mark {
    /// The window start ([`Windows::seq`]) at the last save; 0 before the first.
    stamp: u32,
    /// The longest call before the last save (the live maximum restarts from zero there).
    max_prior: u64,
}

impl Mark {
    /// The longest call ever, given the live maximum.
    pub fn max_ever(&self, live: u64) -> u64 {
        self.max_prior.max(live)
    }
}

/// A node's or site's totals as they were when a window's first change to it came.
#[derive(Debug, Clone, Copy)]
struct Saved {
    index: u32,
    seq: u32,
    totals: Totals,
}

/// Which log: the tree's nodes or the flat table's sites.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Nodes = 0,
    Sites = 1,
}

/// The profilers' windows, so each sees only its own counts, started and ended in O(1)
/// and read in O(what changed): copy on write. A window opening takes the next start
/// number; the first change to a node or site after the newest start saves its totals
/// (with that start number) before changing them, and restarts its live maximum. A
/// window's count for a node is then its live totals minus the first saved copy made
/// since the window opened (nothing saved: untouched, nothing to count), and its longest
/// call the largest of the live maximum and the maxima saved after that first copy.
#[derive(Debug, Default)]
pub struct Windows {
    /// The newest window's start number; 0 before the first.
    seq: u32,
    /// Start numbers of the open windows.
    open: Vec<u32>,
    /// Saved copies, by kind, in start-number order.
    logs: [Vec<Saved>; 2],
}

impl Windows {
    /// About to change `totals` (node or site `index`): save them first if this is their
    /// first change since the newest window opened.
    #[inline(always)]
    pub fn touch(&mut self, kind: Kind, index: u32, totals: &mut Totals, mark: &mut Mark) {
        if mark.stamp != self.seq {
            self.save(kind, index, totals, mark);
        }
    }

    #[cold]
    #[inline(never)]
    fn save(&mut self, kind: Kind, index: u32, totals: &mut Totals, mark: &mut Mark) {
        mark.stamp = self.seq;
        if self.open.is_empty() {
            return;
        }
        self.logs[kind as usize].push(Saved {
            index,
            seq: self.seq,
            totals: *totals,
        });
        mark.max_prior = mark.max_prior.max(totals.max_ticks);
        totals.max_ticks = 0;
    }

    /// A window opens; returns its start number.
    pub fn open(&mut self) -> u32 {
        self.seq += 1;
        self.open.push(self.seq);
        self.seq
    }

    /// The window `seq` closes: copies no open window needs are dropped.
    pub fn close(&mut self, seq: u32) {
        if let Some(i) = self.open.iter().position(|&s| s == seq) {
            self.open.swap_remove(i);
        }
        match self.open.iter().min() {
            None => self.logs.iter_mut().for_each(Vec::clear),
            Some(&first) => {
                for log in &mut self.logs {
                    let keep = log.partition_point(|e| e.seq < first);
                    log.drain(..keep);
                }
            }
        }
    }

    /// The open windows, for a reset that starts the records again.
    pub fn carry(&self) -> Windows {
        Windows {
            seq: self.seq,
            open: self.open.clone(),
            logs: [Vec::new(), Vec::new()],
        }
    }

    /// What changed since the window `seq` opened: `(index, totals)` for each node (or
    /// site) changed, `live(index)` giving the current totals, sorted by index.
    pub fn delta(
        &self,
        kind: Kind,
        seq: u32,
        live: impl Fn(u32) -> Option<Totals>,
    ) -> Vec<(u32, Totals)> {
        let log = &self.logs[kind as usize];
        let start = log.partition_point(|e| e.seq < seq);
        let mut first: HashMap<u32, (Totals, u64), BuildHasherDefault<IdHasher>> =
            HashMap::default();
        for e in &log[start..] {
            first
                .entry(e.index)
                .and_modify(|(_, max)| *max = (*max).max(e.totals.max_ticks))
                .or_insert((e.totals, 0));
        }
        let mut out: Vec<(u32, Totals)> = first
            .into_iter()
            .filter_map(|(index, (base, max))| {
                let now = live(index)?;
                Some((
                    index,
                    Totals {
                        calls: now.calls.wrapping_sub(base.calls),
                        ticks: now.ticks.wrapping_sub(base.ticks),
                        self_ticks: now.self_ticks.wrapping_sub(base.self_ticks),
                        max_ticks: now.max_ticks.max(max),
                        raised: now.raised.wrapping_sub(base.raised),
                        untimed: now.untimed.wrapping_sub(base.untimed),
                        rec_ticks: now.rec_ticks.wrapping_sub(base.rec_ticks),
                    },
                ))
            })
            .collect();
        out.sort_unstable_by_key(|(index, _)| *index);
        out
    }
}

impl Tree {
    /// Push a call at `link` starting at `start` (ended by [`Tree::end`], or by
    /// [`Tree::suspend`] and [`Tree::add`]).
    ///
    /// # Safety
    /// `link.node` is one of this tree's nodes (from [`Tree::link`] or a frame of a stack
    /// of this tree).
    #[inline(always)]
    pub unsafe fn enter(&mut self, stack: &mut Stack, link: Link, start: u64) {
        debug_assert!((link.node as usize) < self.nodes.len());
        // SAFETY: as this function's contract; nodes are never removed.
        let n = unsafe { self.nodes.get_unchecked_mut(link.node as usize) };
        stack.frames.push(Frame {
            node: link.node,
            start,
            child_ticks: 0,
            recursive: n.active != 0,
        });
        n.active += 1;
    }
}

impl Tree {
    /// Pop the innermost call, ended at `end`; returns it and its length, having charged
    /// its length to the enclosing call. `None` when only the root is left. (The profiler
    /// ends calls with [`Tree::end`]; the tests check the two agree.)
    #[cfg(test)]
    pub fn leave(&mut self, stack: &mut Stack, end: u64) -> Option<(Frame, u64)> {
        let frame = self.suspend(stack)?;
        let ticks = end.wrapping_sub(frame.start);
        if let Some(parent) = stack.frames.last_mut() {
            parent.child_ticks += ticks;
        }
        Some((frame, ticks))
    }

    /// End the innermost call at `end`, as [`Tree::leave`] then [`Tree::add`] do, in one
    /// visit of its node: pop it, charge its length to the enclosing call and add it to
    /// its node's totals (which its site's flat row sums when read). Returns what the
    /// caller needs of it (plain numbers: nothing of the frame is copied that the per-call
    /// path does not use). No bounds checks.
    ///
    /// # Safety
    /// The stack holds the root frame and at least one call above it, and its frames'
    /// nodes are this tree's.
    #[inline(always)]
    pub unsafe fn end(
        &mut self,
        w: &mut Windows,
        stack: &mut Stack,
        end: u64,
        raised: bool,
    ) -> Ended {
        let len = stack.frames.len();
        debug_assert!(len >= 2);
        // SAFETY: `len >= 2` (this function's contract): index `len - 1` is the call and
        // `len - 2` the enclosing call (or the root); `Frame` is `Copy`, so shortening the
        // vector by one drops nothing.
        let frame = unsafe {
            let frame = *stack.frames.get_unchecked(len - 1);
            stack.frames.set_len(len - 1);
            frame
        };
        let ticks = end.wrapping_sub(frame.start);
        // SAFETY: as above.
        unsafe { stack.frames.get_unchecked_mut(len - 2) }.child_ticks += ticks;
        debug_assert!((frame.node as usize) < self.nodes.len());
        // SAFETY: the frame's node is this tree's (contract); nodes are never removed.
        let n = unsafe { self.nodes.get_unchecked_mut(frame.node as usize) };
        n.active = n.active.saturating_sub(1);
        w.touch(Kind::Nodes, frame.node, &mut n.totals, &mut n.mark);
        n.totals.count(&frame, ticks, raised);
        Ended {
            node: frame.node,
            start: frame.start,
            ticks,
        }
    }

    /// Pop the innermost call without ending it (an awaited call between its steps):
    /// nothing is charged to the enclosing call.
    #[inline(always)]
    pub fn suspend(&mut self, stack: &mut Stack) -> Option<Frame> {
        if stack.frames.len() <= 1 {
            return None;
        }
        let frame = stack.frames.pop()?;
        let n = &mut self.nodes[frame.node as usize];
        n.active = n.active.saturating_sub(1);
        Some(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(tree: &mut Tree, stack: &mut Stack, site: u32, start: u64) {
        let link = tree.link(stack.top(), site, site as usize + 1);
        // SAFETY: the link is this tree's.
        unsafe { tree.enter(stack, link, start) };
    }

    fn ret(tree: &mut Tree, stack: &mut Stack, end: u64, raised: bool) {
        let (frame, ticks) = tree.leave(stack, end).expect("a frame");
        tree.add(&mut Windows::default(), &frame, ticks, raised);
    }

    #[test]
    fn nested_calls_build_paths_with_self_time() {
        let mut tree = Tree::default();
        let root = tree.add_root(0);
        let mut stack = Stack::new(root);
        // a [0, 100) calls b [10, 40) and b [50, 60); b calls nothing.
        call(&mut tree, &mut stack, 1, 0);
        call(&mut tree, &mut stack, 2, 10);
        ret(&mut tree, &mut stack, 40, false);
        call(&mut tree, &mut stack, 2, 50);
        ret(&mut tree, &mut stack, 60, true);
        ret(&mut tree, &mut stack, 100, false);
        assert_eq!(tree.nodes.len(), 3);
        let a = tree.nodes[1].totals;
        let b = tree.nodes[2].totals;
        assert_eq!(
            (a.calls, a.ticks, a.self_ticks, a.max_ticks),
            (1, 100, 60, 100)
        );
        assert_eq!(
            (b.calls, b.ticks, b.self_ticks, b.max_ticks, b.raised),
            (2, 40, 40, 30, 1)
        );
        assert_eq!(tree.nodes[2].parent, 1);
        assert!(
            tree.leave(&mut stack, 200).is_none(),
            "the root frame stays"
        );
    }

    #[test]
    fn same_site_under_different_parents_are_different_nodes() {
        let mut tree = Tree::default();
        let root = tree.add_root(0);
        let mut stack = Stack::new(root);
        for parent_site in [1, 2] {
            call(&mut tree, &mut stack, parent_site, 0);
            call(&mut tree, &mut stack, 3, 1);
            ret(&mut tree, &mut stack, 2, false);
            ret(&mut tree, &mut stack, 3, false);
        }
        let sites: Vec<(u32, u32)> = tree.nodes.iter().map(|n| (n.site, n.parent)).collect();
        assert_eq!(
            sites,
            vec![(u32::MAX, u32::MAX), (1, 0), (3, 1), (2, 0), (3, 3)]
        );
    }

    #[test]
    fn recursion_collapses_without_double_counting() {
        let mut tree = Tree::default();
        let root = tree.add_root(0);
        let mut stack = Stack::new(root);
        // f [0,100) -> g [10,90) -> f [20,80) -> g [30,70)
        call(&mut tree, &mut stack, 1, 0);
        call(&mut tree, &mut stack, 2, 10);
        call(&mut tree, &mut stack, 1, 20);
        call(&mut tree, &mut stack, 2, 30);
        ret(&mut tree, &mut stack, 70, false);
        ret(&mut tree, &mut stack, 80, false);
        ret(&mut tree, &mut stack, 90, false);
        ret(&mut tree, &mut stack, 100, false);
        assert_eq!(tree.nodes.len(), 3, "f and g once each");
        let f = tree.nodes[1].totals;
        let g = tree.nodes[2].totals;
        assert_eq!((f.calls, f.ticks, f.self_ticks), (2, 100, 20 + 20));
        assert_eq!((g.calls, g.ticks, g.self_ticks), (2, 80, 20 + 40));
        let self_sum: u64 = tree.nodes.iter().map(|n| n.totals.self_ticks).sum();
        assert_eq!(self_sum, 100, "self times partition the run");
    }

    #[test]
    fn cache_answers_repeated_calls_and_follows_new_keys() {
        let mut tree = Tree::default();
        let root = tree.add_root(0);
        assert_eq!(tree.cached_link(root, 7), None);
        let a = tree.link(root, 1, 7);
        assert_eq!(tree.cached_link(root, 7), Some(a));
        let b = tree.link(root, 2, 8);
        assert_ne!(a, b);
        assert_eq!(tree.cached_link(root, 7), None);
        assert_eq!(tree.link(root, 1, 7), a, "the map keeps the first link");
        assert_eq!(tree.cached_link(root, 0), None, "zero is never a key");
    }

    #[test]
    fn windows_see_only_their_own_counts_and_maxima() {
        let mut tree = Tree::default();
        let mut w = Windows::default();
        let root = tree.add_root(0);
        let mut stack = Stack::new(root);
        let mut one = |tree: &mut Tree, w: &mut Windows, site: u32, len: u64| {
            let link = tree.link(stack.top(), site, site as usize + 1);
            // SAFETY: the link is this tree's.
            unsafe { tree.enter(&mut stack, link, 0) };
            let (frame, ticks) = tree.leave(&mut stack, len).expect("a frame");
            tree.add(w, &frame, ticks, false);
        };
        one(&mut tree, &mut w, 1, 50); // before any window
        let outer = w.open();
        one(&mut tree, &mut w, 1, 10);
        let inner = w.open();
        one(&mut tree, &mut w, 1, 20);
        one(&mut tree, &mut w, 2, 5);
        w.close(inner);
        let at_inner = |tree: &Tree, w: &Windows, seq| {
            w.delta(Kind::Nodes, seq, |i| {
                tree.nodes.get(i as usize).map(|n| n.totals)
            })
        };
        one(&mut tree, &mut w, 1, 7);
        let d = at_inner(&tree, &w, outer);
        let row: Vec<(u32, u64, u64, u64)> = d
            .iter()
            .map(|(i, t)| (*i, t.calls, t.ticks, t.max_ticks))
            .collect();
        assert_eq!(row, vec![(1, 3, 37, 20), (2, 1, 5, 5)]);
        let n = &tree.nodes[1];
        assert_eq!(n.mark.max_ever(n.totals.max_ticks), 50);
        w.close(outer);
        assert!(
            w.logs.iter().all(Vec::is_empty),
            "nothing kept with no window open"
        );
        let late = w.open();
        assert!(
            at_inner(&tree, &w, late).is_empty(),
            "a new window starts at zero"
        );
    }

    #[test]
    fn end_and_child_of_top_agree_with_leave_add_and_link() {
        // The same calls (nested, repeated, recursive, raising) through the per-call path
        // and through the general one give the same tree.
        let script: &[(bool, u32, u64)] = &[
            (true, 1, 0),
            (true, 2, 5),
            (false, 0, 9),
            (true, 2, 10),
            (true, 1, 12),
            (true, 2, 13),
            (false, 1, 20),
            (false, 0, 21),
            (false, 1, 30),
            (false, 0, 40),
        ];
        let run = |fast: bool| {
            let mut tree = Tree::default();
            let mut w = Windows::default();
            let root = tree.add_root(0);
            let mut stack = Stack::new(root);
            for &(is_call, site, t) in script {
                if is_call {
                    let link = if fast {
                        // SAFETY: the stack is this tree's and holds its root.
                        unsafe { tree.child_of_top(&stack, site, site as usize + 1) }
                    } else {
                        tree.link(stack.top(), site, site as usize + 1)
                    };
                    // SAFETY: the link is this tree's.
                    unsafe { tree.enter(&mut stack, link, t) };
                } else if fast {
                    // SAFETY: a call is on the stack above the root.
                    let ended = unsafe { tree.end(&mut w, &mut stack, t, site == 1) };
                    assert_eq!(ended.ticks, t - ended.start);
                } else {
                    let (frame, ticks) = tree.leave(&mut stack, t).expect("a frame");
                    tree.add(&mut w, &frame, ticks, site == 1);
                }
            }
            assert_eq!(stack.frames.len(), 1);
            tree.nodes
                .iter()
                .map(|n| (n.site, n.parent, n.totals, n.active))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(true), run(false));
    }

    #[test]
    fn untimed_calls_count_without_time() {
        let mut tree = Tree::default();
        let root = tree.add_root(0);
        let link = tree.link(root, 4, 5);
        tree.add_untimed(&mut Windows::default(), link.node);
        let t = tree.nodes[link.node as usize].totals;
        assert_eq!((t.calls, t.untimed, t.ticks), (1, 1, 0));
    }
}
