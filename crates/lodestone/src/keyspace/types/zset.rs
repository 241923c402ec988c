//! The zset value type: its encodings (Redis's names: see `encoding`),
//! conversions between them, and the operations the zset commands need.
//!
//! Every element is one allocation ([`Elem`]): `[next][score][len][member]`.
//! Both encodings order elements by (score, member), as Redis does.
//!
//! - `listpack` (small sets): a sorted `Vec<Elem>`; member lookups scan it,
//!   like Redis's listpack.
//! - `skiplist` (large sets): an order-statistic B+tree of element pointers
//!   (each inner child records its subtree's element count and its largest
//!   element, so rank and index queries are O(log n)), plus a chained hash
//!   table from member to element whose chain link lives inside the element
//!   (no separate dict entries). Per element that is the allocation itself
//!   (16 bytes + member), about 8-16 bytes of tree leaf and 8-16 bytes of
//!   bucket array: well under Redis's skiplist node + dict entry + sds.
//!   The chained table also gives ZSCAN Redis's reverse-binary cursor
//!   guarantee across resizes.

use crate::keyspace::varint::varint_len;
use std::alloc::{alloc, dealloc, Layout};
use std::cmp::Ordering;
use std::hash::BuildHasher;
use std::ptr::{self, NonNull};

// ---------------------------------------------------------------------------
// Elements
// ---------------------------------------------------------------------------

const OFF_SCORE: usize = 8;
const OFF_LEN: usize = 16;

/// Raw element pointer (non-owning). Readers are unsafe: the pointer must
/// reference a live element.
type Raw = *mut u8;

#[inline]
unsafe fn raw_score(p: Raw) -> f64 {
    ptr::read_unaligned(p.add(OFF_SCORE) as *const f64)
}

#[inline]
unsafe fn raw_member<'a>(p: Raw) -> &'a [u8] {
    let q = p.add(OFF_LEN);
    let b = *q;
    if b < 0x80 {
        return std::slice::from_raw_parts(q.add(1), b as usize);
    }
    let mut n = 0usize;
    let mut shift = 0;
    let mut i = 0;
    loop {
        let b = *q.add(i);
        n |= ((b & 0x7f) as usize) << shift;
        i += 1;
        if b < 0x80 {
            break;
        }
        shift += 7;
    }
    std::slice::from_raw_parts(q.add(i), n)
}

#[inline]
unsafe fn raw_next(p: Raw) -> Raw {
    ptr::read_unaligned(p as *const Raw)
}

#[inline]
unsafe fn raw_set_next(p: Raw, n: Raw) {
    ptr::write_unaligned(p as *mut Raw, n)
}

/// Orders (score, member) pairs the way the sorted set does.
#[inline]
fn cmp_key(s1: f64, m1: &[u8], s2: f64, m2: &[u8]) -> Ordering {
    match s1.partial_cmp(&s2) {
        Some(Ordering::Equal) | None => m1.cmp(m2),
        Some(o) => o,
    }
}

/// One owned element: member and score in a single allocation, with room
/// for the hash-chain link used by the large encoding.
pub struct Elem(NonNull<u8>);

// SAFETY: an Elem uniquely owns its allocation.
unsafe impl Send for Elem {}
unsafe impl Sync for Elem {}

impl Elem {
    pub fn new(member: &[u8], score: f64) -> Elem {
        let size = OFF_LEN + varint_len(member.len()) + member.len();
        let layout = Layout::from_size_align(size, 8).expect("elem layout");
        // SAFETY: size > 0; every byte is written below.
        unsafe {
            let p = alloc(layout);
            let Some(nn) = NonNull::new(p) else {
                std::alloc::handle_alloc_error(layout)
            };
            raw_set_next(p, ptr::null_mut());
            ptr::write_unaligned(p.add(OFF_SCORE) as *mut f64, score);
            let mut n = member.len();
            let mut i = OFF_LEN;
            while n >= 0x80 {
                *p.add(i) = (n as u8) | 0x80;
                n >>= 7;
                i += 1;
            }
            *p.add(i) = n as u8;
            ptr::copy_nonoverlapping(member.as_ptr(), p.add(i + 1), member.len());
            Elem(nn)
        }
    }

    #[inline]
    fn raw(&self) -> Raw {
        self.0.as_ptr()
    }

    #[inline]
    pub fn score(&self) -> f64 {
        // SAFETY: self is live.
        unsafe { raw_score(self.raw()) }
    }

    #[inline]
    fn set_score(&mut self, s: f64) {
        // SAFETY: self is live and uniquely borrowed.
        unsafe { ptr::write_unaligned(self.raw().add(OFF_SCORE) as *mut f64, s) }
    }

    #[inline]
    pub fn member(&self) -> &[u8] {
        // SAFETY: self is live.
        unsafe { raw_member(self.raw()) }
    }

    fn alloc_size(&self) -> usize {
        let l = self.member().len();
        OFF_LEN + varint_len(l) + l
    }

    #[inline]
    fn cmp_to(&self, score: f64, member: &[u8]) -> Ordering {
        cmp_key(self.score(), self.member(), score, member)
    }
}

impl Drop for Elem {
    fn drop(&mut self) {
        let size = self.alloc_size();
        // SAFETY: same layout as allocated in new.
        unsafe { dealloc(self.raw(), Layout::from_size_align_unchecked(size, 8)) }
    }
}

// ---------------------------------------------------------------------------
// Order-statistic B+tree
// ---------------------------------------------------------------------------

const LEAF_CAP: usize = 64;
const INNER_CAP: usize = 32;

enum Node {
    Leaf(Vec<Elem>),
    Inner(Vec<Child>),
}

struct Child {
    node: Node,
    /// Elements in this subtree.
    len: usize,
    /// The subtree's largest element.
    max: Raw,
    /// Its score, kept here so a descent compares scores without reading
    /// the element (a cache miss each); members are read only on ties.
    /// Scores never change while an element is in the tree.
    max_score: f64,
}

impl Child {
    /// Re-reads the subtree's largest element after a change.
    #[inline]
    fn refresh_max(&mut self) {
        self.max = self.node.max_raw();
        self.max_score = score_or_zero(self.max);
    }

    /// Orders the subtree's largest element against (score, member).
    #[inline]
    fn cmp_max(&self, score: f64, member: &[u8]) -> Ordering {
        match self.max_score.partial_cmp(&score) {
            Some(Ordering::Equal) | None => {
                // SAFETY: maxes point at live elements of the subtree.
                unsafe { raw_member(self.max) }.cmp(member)
            }
            Some(o) => o,
        }
    }
}

#[inline]
fn score_or_zero(p: Raw) -> f64 {
    if p.is_null() {
        0.0
    } else {
        // SAFETY: non-null maxes point at live elements.
        unsafe { raw_score(p) }
    }
}

impl Node {
    fn items(&self) -> usize {
        match self {
            Node::Leaf(v) => v.len(),
            Node::Inner(k) => k.len(),
        }
    }

    fn count(&self) -> usize {
        match self {
            Node::Leaf(v) => v.len(),
            Node::Inner(k) => k.iter().map(|c| c.len).sum(),
        }
    }

    fn max_raw(&self) -> Raw {
        match self {
            Node::Leaf(v) => v.last().map_or(ptr::null_mut(), |e| e.raw()),
            Node::Inner(k) => k.last().map_or(ptr::null_mut(), |c| c.max),
        }
    }

    fn child(node: Node) -> Child {
        let max = node.max_raw();
        Child {
            len: node.count(),
            max,
            max_score: score_or_zero(max),
            node,
        }
    }

    /// Inserts; returns a new right sibling when the node split.
    fn insert(&mut self, e: Elem) -> Option<Node> {
        match self {
            Node::Leaf(v) => {
                let (s, m) = (e.score(), e.member());
                let pos = v.partition_point(|x| x.cmp_to(s, m) == Ordering::Less);
                if v.len() < LEAF_CAP {
                    v.insert(pos, e);
                    return None;
                }
                let mut right = Vec::with_capacity(LEAF_CAP);
                if pos == v.len() {
                    // Appending (ascending loads): keep the left leaf full.
                    right.push(e);
                } else {
                    let half = LEAF_CAP / 2;
                    right.extend(v.drain(half..));
                    if pos <= half {
                        v.insert(pos, e);
                    } else {
                        right.insert(pos - half, e);
                    }
                }
                Some(Node::Leaf(right))
            }
            Node::Inner(kids) => {
                let (s, m) = (e.score(), e.member());
                let mut i = kids.partition_point(|c| c.cmp_max(s, m) == Ordering::Less);
                if i == kids.len() {
                    i -= 1;
                }
                let split = kids[i].node.insert(e);
                match split {
                    None => {
                        kids[i].len += 1;
                        kids[i].refresh_max();
                        None
                    }
                    Some(r) => {
                        kids[i].len = kids[i].node.count();
                        kids[i].refresh_max();
                        kids.insert(i + 1, Node::child(r));
                        if kids.len() > INNER_CAP {
                            let mut right = Vec::with_capacity(INNER_CAP + 1);
                            right.extend(kids.drain(kids.len() / 2..));
                            Some(Node::Inner(right))
                        } else {
                            None
                        }
                    }
                }
            }
        }
    }

    /// Removes the element (score, member) whose allocation is `p`: inner
    /// nodes are chosen by their cached maxima, the leaf slot by pointer, so
    /// one descent does what a rank lookup plus `remove_at` did in two.
    fn remove_elem(&mut self, score: f64, member: &[u8], p: Raw) -> Elem {
        match self {
            Node::Leaf(v) => {
                let i = v
                    .iter()
                    .position(|e| e.raw() == p)
                    .expect("element in its leaf");
                v.remove(i)
            }
            Node::Inner(kids) => {
                let i = kids.partition_point(|c| c.cmp_max(score, member) == Ordering::Less);
                let e = kids[i].node.remove_elem(score, member, p);
                kids[i].len -= 1;
                fix_child(kids, i);
                e
            }
        }
    }

    /// Removes the element at `idx` of this subtree.
    fn remove_at(&mut self, mut idx: usize) -> Elem {
        match self {
            Node::Leaf(v) => v.remove(idx),
            Node::Inner(kids) => {
                let mut i = 0;
                while idx >= kids[i].len {
                    idx -= kids[i].len;
                    i += 1;
                }
                let e = kids[i].node.remove_at(idx);
                kids[i].len -= 1;
                fix_child(kids, i);
                e
            }
        }
    }
}

/// Rebalances an underfull child with a neighbour (merging when both fit
/// in one node) and refreshes counts and maxima.
fn fix_child(kids: &mut Vec<Child>, i: usize) {
    let n = kids[i].node.items();
    if n == 0 {
        kids.remove(i);
        return;
    }
    kids[i].refresh_max();
    let cap = match kids[i].node {
        Node::Leaf(_) => LEAF_CAP,
        Node::Inner(_) => INNER_CAP,
    };
    if n >= cap / 2 || kids.len() < 2 {
        return;
    }
    let j = if i + 1 < kids.len() { i + 1 } else { i - 1 };
    let (a, b) = (i.min(j), i.max(j));
    let (l, r) = kids.split_at_mut(b);
    let (left, right) = (&mut l[a], &mut r[0]);
    let merged = match (&mut left.node, &mut right.node) {
        (Node::Leaf(lv), Node::Leaf(rv)) => redistribute(lv, rv, cap),
        (Node::Inner(lv), Node::Inner(rv)) => redistribute(lv, rv, cap),
        _ => unreachable!("siblings have the same height"),
    };
    if merged {
        kids.remove(b);
        kids[a].len = kids[a].node.count();
        kids[a].refresh_max();
    } else {
        for k in [a, b] {
            kids[k].len = kids[k].node.count();
            kids[k].refresh_max();
        }
    }
}

/// Moves items between two neighbours: all into `l` when they fit (returns
/// true), otherwise half and half.
fn redistribute<T>(l: &mut Vec<T>, r: &mut Vec<T>, cap: usize) -> bool {
    let total = l.len() + r.len();
    if total <= cap {
        l.append(r);
        return true;
    }
    let target = total / 2;
    if l.len() < target {
        let k = target - l.len();
        l.extend(r.drain(..k));
    } else {
        let tail: Vec<T> = l.drain(target..).collect();
        r.splice(0..0, tail);
    }
    false
}

struct Tree {
    root: Node,
    len: usize,
}

impl Tree {
    fn new() -> Tree {
        Tree {
            root: Node::Leaf(Vec::with_capacity(LEAF_CAP)),
            len: 0,
        }
    }

    fn insert(&mut self, e: Elem) {
        self.len += 1;
        if let Some(r) = self.root.insert(e) {
            let old = std::mem::replace(&mut self.root, Node::Leaf(Vec::new()));
            let mut kids = Vec::with_capacity(INNER_CAP + 1);
            kids.push(Node::child(old));
            kids.push(Node::child(r));
            self.root = Node::Inner(kids);
        }
    }

    fn remove_at(&mut self, idx: usize) -> Elem {
        debug_assert!(idx < self.len);
        self.len -= 1;
        let e = self.root.remove_at(idx);
        self.collapse_root();
        e
    }

    /// Removes the element (score, member) held at `p` (see
    /// [`Node::remove_elem`]).
    fn remove_elem(&mut self, score: f64, member: &[u8], p: Raw) -> Elem {
        self.len -= 1;
        let e = self.root.remove_elem(score, member, p);
        self.collapse_root();
        e
    }

    /// Replaces a root left with one child (or none) by that child.
    fn collapse_root(&mut self) {
        loop {
            match &mut self.root {
                Node::Inner(k) if k.len() == 1 => {
                    let c = k.pop().unwrap();
                    self.root = c.node;
                }
                Node::Inner(k) if k.is_empty() => {
                    self.root = Node::Leaf(Vec::with_capacity(LEAF_CAP));
                }
                _ => break,
            }
        }
    }

    /// Number of leading elements for which `pred` holds (`pred` must be
    /// true for a prefix of the order and false afterwards).
    fn count_while(&self, pred: impl Fn(Raw) -> bool) -> usize {
        let mut acc = 0;
        let mut node = &self.root;
        loop {
            match node {
                Node::Inner(kids) => {
                    let i = kids.partition_point(|c| pred(c.max));
                    acc += kids[..i].iter().map(|c| c.len).sum::<usize>();
                    if i == kids.len() {
                        return acc;
                    }
                    node = &kids[i].node;
                }
                Node::Leaf(v) => return acc + v.partition_point(|e| pred(e.raw())),
            }
        }
    }

    /// The leaf holding index `idx` and the offset in it.
    fn leaf_at(&self, mut idx: usize) -> (&[Elem], usize) {
        let mut node = &self.root;
        loop {
            match node {
                Node::Inner(kids) => {
                    let mut i = 0;
                    while idx >= kids[i].len {
                        idx -= kids[i].len;
                        i += 1;
                    }
                    node = &kids[i].node;
                }
                Node::Leaf(v) => return (v, idx),
            }
        }
    }

    /// Rank of the element (score, member), whose allocation is `p` when
    /// known (non-null): inner nodes are searched on their cached maximum
    /// scores, and the leaf by comparing pointers, so the descent reads no
    /// element but on score ties.
    fn rank_in_tree(&self, score: f64, member: &[u8], p: Raw) -> usize {
        let mut acc = 0;
        let mut node = &self.root;
        loop {
            match node {
                Node::Inner(kids) => {
                    // One forward pass that counts as it compares: it reads
                    // the children it has to add up anyway, in order,
                    // instead of a binary search's scattered probes first.
                    let mut next = None;
                    for c in kids.iter() {
                        if c.cmp_max(score, member) != Ordering::Less {
                            next = Some(&c.node);
                            break;
                        }
                        acc += c.len;
                    }
                    match next {
                        Some(n) => node = n,
                        None => return acc,
                    }
                }
                Node::Leaf(v) => {
                    if !p.is_null() {
                        if let Some(i) = v.iter().position(|e| e.raw() == p) {
                            return acc + i;
                        }
                    }
                    return acc + v.partition_point(|e| e.cmp_to(score, member) == Ordering::Less);
                }
            }
        }
    }

    fn visit_leaves(&self, f: &mut impl FnMut(&[Elem])) {
        fn go(n: &Node, f: &mut impl FnMut(&[Elem])) {
            match n {
                Node::Leaf(v) => f(v),
                Node::Inner(k) => k.iter().for_each(|c| go(&c.node, f)),
            }
        }
        go(&self.root, f)
    }

    fn heap_bytes(&self) -> usize {
        fn go(n: &Node) -> usize {
            match n {
                Node::Leaf(v) => v.capacity() * 8,
                Node::Inner(k) => {
                    k.capacity() * std::mem::size_of::<Child>()
                        + k.iter().map(|c| go(&c.node)).sum::<usize>()
                }
            }
        }
        go(&self.root)
    }

    #[cfg(test)]
    fn check(&self) {
        fn go(n: &Node, root: bool) -> (usize, Raw) {
            match n {
                Node::Leaf(v) => {
                    assert!(v.len() <= LEAF_CAP);
                    assert!(root || !v.is_empty());
                    for w in v.windows(2) {
                        assert_eq!(w[0].cmp_to(w[1].score(), w[1].member()), Ordering::Less);
                    }
                    (v.len(), n.max_raw())
                }
                Node::Inner(k) => {
                    assert!(k.len() <= INNER_CAP && (root && k.len() >= 2 || !k.is_empty()));
                    let mut total = 0;
                    for c in k {
                        let (l, m) = go(&c.node, false);
                        assert_eq!(l, c.len);
                        assert_eq!(m, c.max);
                        assert_eq!(c.max_score.to_bits(), score_or_zero(c.max).to_bits());
                        total += l;
                    }
                    (total, n.max_raw())
                }
            }
        }
        assert_eq!(go(&self.root, true).0, self.len);
    }
}

// ---------------------------------------------------------------------------
// Member -> element hash table (chained through the elements)
// ---------------------------------------------------------------------------

#[inline]
fn member_hash(m: &[u8]) -> u64 {
    static STATE: foldhash::fast::FixedState =
        foldhash::fast::FixedState::with_seed(0x7a73_6574_6469_6374);
    STATE.hash_one(m)
}

struct Dict {
    table: Box<[Raw]>,
    len: usize,
}

impl Dict {
    fn with_capacity(n: usize) -> Dict {
        Dict {
            table: vec![ptr::null_mut(); n.clamp(4, 1 << 32).next_power_of_two()]
                .into_boxed_slice(),
            len: 0,
        }
    }

    #[inline]
    fn mask(&self) -> usize {
        self.table.len() - 1
    }

    fn find(&self, m: &[u8]) -> Raw {
        let mut p = self.table[member_hash(m) as usize & self.mask()];
        // SAFETY: chains hold live elements.
        unsafe {
            while !p.is_null() {
                if raw_member(p) == m {
                    return p;
                }
                p = raw_next(p);
            }
        }
        ptr::null_mut()
    }

    /// Links an element whose member is not in the table yet.
    fn insert(&mut self, p: Raw) {
        if self.len >= self.table.len() {
            self.resize(self.table.len() * 2);
        }
        // SAFETY: p is a live element owned by the tree.
        unsafe {
            let b = member_hash(raw_member(p)) as usize & self.mask();
            raw_set_next(p, self.table[b]);
            self.table[b] = p;
        }
        self.len += 1;
    }

    /// Unlinks and returns the element for `m` (null if absent).
    fn remove(&mut self, m: &[u8]) -> Raw {
        let b = member_hash(m) as usize & self.mask();
        let mut prev: Raw = ptr::null_mut();
        let mut p = self.table[b];
        // SAFETY: chains hold live elements.
        unsafe {
            while !p.is_null() {
                if raw_member(p) == m {
                    let next = raw_next(p);
                    if prev.is_null() {
                        self.table[b] = next;
                    } else {
                        raw_set_next(prev, next);
                    }
                    raw_set_next(p, ptr::null_mut());
                    self.len -= 1;
                    if self.table.len() > 4 && self.len * 10 < self.table.len() {
                        self.resize(self.len.max(4).next_power_of_two());
                    }
                    return p;
                }
                prev = p;
                p = raw_next(p);
            }
        }
        ptr::null_mut()
    }

    fn resize(&mut self, size: usize) {
        let mut t = vec![ptr::null_mut(); size].into_boxed_slice();
        let mask = size - 1;
        for &head in self.table.iter() {
            let mut p = head;
            // SAFETY: chains hold live elements.
            unsafe {
                while !p.is_null() {
                    let next = raw_next(p);
                    let b = member_hash(raw_member(p)) as usize & mask;
                    raw_set_next(p, t[b]);
                    t[b] = p;
                    p = next;
                }
            }
        }
        self.table = t;
    }

    /// Visits one bucket for cursor `v`; returns the next cursor (0 at the
    /// end). Reverse-binary increments keep the guarantee across resizes.
    fn scan_bucket(&self, v: u64, f: &mut impl FnMut(Raw)) -> u64 {
        let mask = self.mask() as u64;
        let mut p = self.table[(v & mask) as usize];
        // SAFETY: chains hold live elements.
        unsafe {
            while !p.is_null() {
                f(p);
                p = raw_next(p);
            }
        }
        let mut v = v | !mask;
        v = v.reverse_bits();
        v = v.wrapping_add(1);
        v.reverse_bits()
    }
}

/// The large encoding.
struct Big {
    tree: Tree,
    dict: Dict,
}

impl Big {
    fn new(cap: usize) -> Big {
        Big {
            tree: Tree::new(),
            dict: Dict::with_capacity(cap),
        }
    }

    fn insert(&mut self, e: Elem) {
        self.dict.insert(e.raw());
        self.tree.insert(e);
    }
}

// ---------------------------------------------------------------------------
// The value
// ---------------------------------------------------------------------------

enum Repr {
    Listpack(Vec<Elem>),
    Skiplist(Box<Big>),
}

/// A zset value.
pub struct ZSetValue {
    repr: Repr,
}

/// ZADD's input flags.
#[derive(Clone, Copy, Debug, Default)]
pub struct AddFlags {
    pub nx: bool,
    pub xx: bool,
    pub gt: bool,
    pub lt: bool,
    pub incr: bool,
}

/// What [`ZSetValue::add`] did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AddOutcome {
    Added(f64),
    Updated(f64),
    /// The element was there and its score stays (reply carries the score).
    Same(f64),
    /// Nothing done (NX on existing, XX on missing, GT/LT refusal).
    Nop,
}

/// The encoding thresholds (zset-max-listpack-entries / -value).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_entries: usize,
    pub max_value: usize,
}

/// A bound of a lex range.
#[derive(Clone, Debug, PartialEq)]
pub enum LexBound {
    /// `-`
    Min,
    /// `+`
    Max,
    Incl(Vec<u8>),
    Excl(Vec<u8>),
}

impl LexBound {
    /// Parses `[x`, `(x`, `-` or `+`.
    pub fn parse(a: &[u8]) -> Option<LexBound> {
        match a.first() {
            Some(b'+') if a.len() == 1 => Some(LexBound::Max),
            Some(b'-') if a.len() == 1 => Some(LexBound::Min),
            Some(b'[') => Some(LexBound::Incl(a[1..].to_vec())),
            Some(b'(') => Some(LexBound::Excl(a[1..].to_vec())),
            _ => None,
        }
    }
}

/// A score bound: value and whether it is exclusive.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScoreBound {
    pub value: f64,
    pub excl: bool,
}

impl Default for ZSetValue {
    fn default() -> Self {
        ZSetValue {
            repr: Repr::Listpack(Vec::new()),
        }
    }
}

impl Clone for ZSetValue {
    fn clone(&self) -> Self {
        let mut out = match &self.repr {
            Repr::Listpack(v) => Repr::Listpack(Vec::with_capacity(v.len())),
            Repr::Skiplist(_) => Repr::Skiplist(Box::new(Big::new(self.len()))),
        };
        self.for_each(|m, s| match &mut out {
            Repr::Listpack(v) => v.push(Elem::new(m, s)),
            Repr::Skiplist(b) => b.insert(Elem::new(m, s)),
        });
        ZSetValue { repr: out }
    }
}

impl PartialEq for ZSetValue {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.to_vec() == other.to_vec()
    }
}

impl std::fmt::Debug for ZSetValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut l = f.debug_list();
        self.for_each(|m, s| {
            l.entry(&(String::from_utf8_lossy(m), s));
        });
        l.finish()
    }
}

impl ZSetValue {
    /// An empty value in the encoding Redis's `zsetTypeCreate` would pick
    /// for about `size_hint` elements of `value_len_hint` bytes.
    pub fn with_hint(size_hint: usize, value_len_hint: usize, lim: Limits) -> ZSetValue {
        if size_hint <= lim.max_entries && value_len_hint <= lim.max_value {
            ZSetValue::default()
        } else {
            ZSetValue {
                repr: Repr::Skiplist(Box::new(Big::new(size_hint))),
            }
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Listpack(v) => v.len(),
            Repr::Skiplist(b) => b.tree.len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        match self.repr {
            Repr::Listpack(_) => "listpack",
            Repr::Skiplist(_) => "skiplist",
        }
    }

    pub fn is_listpack(&self) -> bool {
        matches!(self.repr, Repr::Listpack(_))
    }

    /// Converts a listpack to the large encoding (no-op otherwise).
    pub fn convert_to_skiplist(&mut self, cap: usize) {
        if let Repr::Listpack(v) = &mut self.repr {
            let mut b = Big::new(cap.max(v.len()));
            for e in v.drain(..) {
                b.insert(e);
            }
            self.repr = Repr::Skiplist(Box::new(b));
        }
    }

    /// Converts to listpack (no-op if already).
    pub fn convert_to_listpack(&mut self) {
        if let Repr::Skiplist(_) = self.repr {
            let Repr::Skiplist(b) = std::mem::replace(&mut self.repr, Repr::Listpack(Vec::new()))
            else {
                unreachable!()
            };
            let Big { tree, dict } = *b;
            drop(dict);
            let mut v = Vec::with_capacity(tree.len);
            fn take(n: Node, v: &mut Vec<Elem>) {
                match n {
                    Node::Leaf(l) => v.extend(l),
                    Node::Inner(k) => k.into_iter().for_each(|c| take(c.node, v)),
                }
            }
            take(tree.root, &mut v);
            self.repr = Repr::Listpack(v);
        }
    }

    /// Redis's `zsetTypeMaybeConvert`: a listpack about to receive
    /// `size_hint` elements beyond the entry limit converts up front.
    pub fn maybe_convert(&mut self, size_hint: usize, lim: Limits) {
        if self.is_listpack() && size_hint > lim.max_entries {
            self.convert_to_skiplist(size_hint);
        }
    }

    /// Redis's `zsetConvertToListpackIfNeeded` (used for store results).
    pub fn shrink_if_fits(&mut self, lim: Limits) {
        if !self.is_listpack() && self.len() <= lim.max_entries {
            let mut maxlen = 0;
            self.for_each(|m, _| maxlen = maxlen.max(m.len()));
            if maxlen <= lim.max_value {
                self.convert_to_listpack();
            }
        }
    }

    fn lp_find(v: &[Elem], m: &[u8]) -> Option<usize> {
        v.iter().position(|e| e.member() == m)
    }

    /// The score of a member.
    pub fn score(&self, m: &[u8]) -> Option<f64> {
        self.find(m).map(|(s, _)| s)
    }

    /// Inserts a member known to be absent, converting first if the
    /// listpack would exceed its limits.
    pub fn insert_new(&mut self, m: &[u8], score: f64, lim: Limits) {
        if let Repr::Listpack(v) = &self.repr {
            if v.len() + 1 > lim.max_entries || m.len() > lim.max_value {
                self.convert_to_skiplist(v.len() + 1);
            }
        }
        let e = Elem::new(m, score);
        match &mut self.repr {
            Repr::Listpack(v) => {
                let pos = v.partition_point(|x| x.cmp_to(score, m) == Ordering::Less);
                v.insert(pos, e);
            }
            Repr::Skiplist(b) => b.insert(e),
        }
    }

    /// The score of a present member and, in the large encoding, its
    /// element (null for a listpack).
    fn find(&self, m: &[u8]) -> Option<(f64, Raw)> {
        match &self.repr {
            Repr::Listpack(v) => Self::lp_find(v, m).map(|i| (v[i].score(), ptr::null_mut())),
            Repr::Skiplist(b) => {
                let p = b.dict.find(m);
                // SAFETY: found pointers are live elements.
                (!p.is_null()).then(|| (unsafe { raw_score(p) }, p))
            }
        }
    }

    /// Changes the score of a present member (`p`: its element, from
    /// [`Self::find`]).
    fn update_score(&mut self, m: &[u8], old: f64, new: f64, p: Raw) {
        match &mut self.repr {
            Repr::Listpack(v) => {
                let i = v.partition_point(|x| x.cmp_to(old, m) == Ordering::Less);
                let mut e = v.remove(i);
                e.set_score(new);
                let pos = v.partition_point(|x| x.cmp_to(new, m) == Ordering::Less);
                v.insert(pos, e);
            }
            Repr::Skiplist(b) => {
                let mut e = b.tree.remove_elem(old, m, p);
                e.set_score(new);
                b.tree.insert(e);
            }
        }
    }

    /// ZADD/ZINCRBY on one element. `Err(())` means the resulting score
    /// would be NaN.
    pub fn add(
        &mut self,
        score: f64,
        m: &[u8],
        f: AddFlags,
        lim: Limits,
    ) -> Result<AddOutcome, ()> {
        if score.is_nan() {
            return Err(());
        }
        match self.find(m) {
            Some((cur, p)) => {
                if f.nx {
                    return Ok(AddOutcome::Nop);
                }
                let mut s = score;
                if f.incr {
                    s += cur;
                    if s.is_nan() {
                        return Err(());
                    }
                }
                if (f.lt && s >= cur) || (f.gt && s <= cur) {
                    return Ok(AddOutcome::Nop);
                }
                if s != cur {
                    self.update_score(m, cur, s, p);
                    Ok(AddOutcome::Updated(s))
                } else {
                    Ok(AddOutcome::Same(s))
                }
            }
            None if f.xx => Ok(AddOutcome::Nop),
            None => {
                self.insert_new(m, score, lim);
                Ok(AddOutcome::Added(score))
            }
        }
    }

    /// Removes a member; returns its score.
    pub fn remove(&mut self, m: &[u8]) -> Option<f64> {
        match &mut self.repr {
            Repr::Listpack(v) => Self::lp_find(v, m).map(|i| v.remove(i).score()),
            Repr::Skiplist(b) => {
                let p = b.dict.remove(m);
                if p.is_null() {
                    return None;
                }
                // SAFETY: p is live until the tree drops it below.
                let s = unsafe { raw_score(p) };
                drop(b.tree.remove_elem(s, m, p));
                Some(s)
            }
        }
    }

    /// 0-based rank (ascending) and score of a member.
    pub fn rank(&self, m: &[u8]) -> Option<(usize, f64)> {
        match &self.repr {
            Repr::Listpack(v) => Self::lp_find(v, m).map(|i| (i, v[i].score())),
            Repr::Skiplist(b) => {
                let p = b.dict.find(m);
                if p.is_null() {
                    return None;
                }
                // SAFETY: found pointers are live elements.
                let s = unsafe { raw_score(p) };
                Some((b.tree.rank_in_tree(s, m, p), s))
            }
        }
    }

    /// The element at ascending index `i` (must be < len).
    pub fn get(&self, i: usize) -> (&[u8], f64) {
        let e = match &self.repr {
            Repr::Listpack(v) => &v[i],
            Repr::Skiplist(b) => {
                let (leaf, off) = b.tree.leaf_at(i);
                &leaf[off]
            }
        };
        (e.member(), e.score())
    }

    /// Visits `n` elements starting at ascending index `start`, going up,
    /// or (with `rev`) going down from ascending index `start`.
    pub fn range(&self, start: usize, n: usize, rev: bool, mut f: impl FnMut(&[u8], f64)) {
        if n == 0 {
            return;
        }
        match &self.repr {
            Repr::Listpack(v) => {
                if rev {
                    for e in v[start + 1 - n..=start].iter().rev() {
                        f(e.member(), e.score());
                    }
                } else {
                    for e in &v[start..start + n] {
                        f(e.member(), e.score());
                    }
                }
            }
            Repr::Skiplist(b) => {
                let mut left = n;
                let mut idx = start;
                while left > 0 {
                    let (leaf, off) = b.tree.leaf_at(idx);
                    if rev {
                        let k = (off + 1).min(left);
                        for e in leaf[off + 1 - k..=off].iter().rev() {
                            f(e.member(), e.score());
                        }
                        left -= k;
                        idx = idx.wrapping_sub(k);
                    } else {
                        let k = (leaf.len() - off).min(left);
                        for e in &leaf[off..off + k] {
                            f(e.member(), e.score());
                        }
                        left -= k;
                        idx += k;
                    }
                }
            }
        }
    }

    /// Visits every element in ascending order.
    pub fn for_each(&self, mut f: impl FnMut(&[u8], f64)) {
        match &self.repr {
            Repr::Listpack(v) => v.iter().for_each(|e| f(e.member(), e.score())),
            Repr::Skiplist(b) => b
                .tree
                .visit_leaves(&mut |l: &[Elem]| l.iter().for_each(|e| f(e.member(), e.score()))),
        }
    }

    /// All elements in ascending order (owned).
    pub fn to_vec(&self) -> Vec<(Vec<u8>, f64)> {
        let mut out = Vec::with_capacity(self.len());
        self.for_each(|m, s| out.push((m.to_vec(), s)));
        out
    }

    fn count_pred(&self, pred: impl Fn(f64, &[u8]) -> bool) -> usize {
        match &self.repr {
            Repr::Listpack(v) => v.partition_point(|e| pred(e.score(), e.member())),
            // SAFETY: the tree's pointers reference live elements.
            Repr::Skiplist(b) => b
                .tree
                .count_while(|p| unsafe { pred(raw_score(p), raw_member(p)) }),
        }
    }

    /// Number of elements with score below `x` (or at most `x` with
    /// `or_equal`).
    pub fn count_score_below(&self, x: f64, or_equal: bool) -> usize {
        if or_equal {
            self.count_pred(|s, _| s <= x)
        } else {
            self.count_pred(|s, _| s < x)
        }
    }

    /// The ascending index range `[lo, hi)` of scores within the bounds.
    pub fn score_range(&self, min: ScoreBound, max: ScoreBound) -> (usize, usize) {
        if min.value > max.value || (min.value == max.value && (min.excl || max.excl)) {
            return (0, 0);
        }
        let lo = self.count_score_below(min.value, min.excl);
        let hi = self.count_score_below(max.value, !max.excl);
        (lo, hi.max(lo))
    }

    /// The ascending index range `[lo, hi)` of members within lex bounds
    /// (meaningful when all scores are equal, as in Redis).
    pub fn lex_range(&self, min: &LexBound, max: &LexBound) -> (usize, usize) {
        let empty = match (min, max) {
            (LexBound::Max, _) | (_, LexBound::Min) => true,
            (LexBound::Min, _) | (_, LexBound::Max) => false,
            (LexBound::Incl(a), LexBound::Incl(b)) => a > b,
            (LexBound::Incl(a) | LexBound::Excl(a), LexBound::Incl(b) | LexBound::Excl(b)) => {
                a >= b
            }
        };
        if empty {
            return (0, 0);
        }
        let lo = match min {
            LexBound::Min => 0,
            LexBound::Max => self.len(),
            LexBound::Incl(a) => self.count_pred(|_, m| m < a.as_slice()),
            LexBound::Excl(a) => self.count_pred(|_, m| m <= a.as_slice()),
        };
        let hi = match max {
            LexBound::Min => 0,
            LexBound::Max => self.len(),
            LexBound::Incl(b) => self.count_pred(|_, m| m <= b.as_slice()),
            LexBound::Excl(b) => self.count_pred(|_, m| m < b.as_slice()),
        };
        (lo, hi.max(lo))
    }

    /// Removes ascending indexes `[lo, hi)`; returns how many.
    pub fn remove_range(&mut self, lo: usize, hi: usize) -> usize {
        if hi <= lo {
            return 0;
        }
        match &mut self.repr {
            Repr::Listpack(v) => {
                v.drain(lo..hi);
            }
            Repr::Skiplist(b) => {
                for _ in lo..hi {
                    let e = b.tree.remove_at(lo);
                    b.dict.remove(e.member());
                }
            }
        }
        hi - lo
    }

    /// Removes and returns up to `n` elements from the low end (or the high
    /// end with `max`), in pop order. The core of ZPOPMIN/ZPOPMAX/ZMPOP.
    pub fn pop(&mut self, n: usize, max: bool) -> Vec<(Vec<u8>, f64)> {
        let n = n.min(self.len());
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let idx = if max { self.len() - 1 } else { 0 };
            let e = match &mut self.repr {
                Repr::Listpack(v) => v.remove(idx),
                Repr::Skiplist(b) => {
                    let e = b.tree.remove_at(idx);
                    b.dict.remove(e.member());
                    e
                }
            };
            out.push((e.member().to_vec(), e.score()));
        }
        out
    }

    /// A uniformly random element.
    pub fn random(&self, rng: &mut impl rand::Rng) -> (&[u8], f64) {
        self.get(rng.gen_range(0..self.len()))
    }

    /// One ZSCAN step: visits elements and returns the next cursor. The
    /// listpack encoding is returned whole (cursor 0), like Redis.
    pub fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(&[u8], f64)) -> u64 {
        match &self.repr {
            Repr::Listpack(_) => {
                self.for_each(f);
                0
            }
            Repr::Skiplist(b) => {
                let mut v = cursor;
                let mut emitted = 0;
                let mut iters = count.saturating_mul(10).max(1);
                loop {
                    v = b.dict.scan_bucket(v, &mut |p| {
                        emitted += 1;
                        // SAFETY: chains hold live elements.
                        unsafe { f(raw_member(p), raw_score(p)) }
                    });
                    iters -= 1;
                    if v == 0 || iters == 0 || emitted >= count {
                        return v;
                    }
                }
            }
        }
    }

    /// Feeds the value into a DEBUG DIGEST hasher. Equal values must give
    /// equal digests whatever their encoding.
    pub fn digest(&self, h: &mut sha1_smol::Sha1) {
        self.for_each(|m, s| {
            h.update(&(m.len() as u64).to_le_bytes());
            h.update(m);
            h.update(strutil::format_double(s).as_bytes());
        });
    }

    /// Approximate heap bytes used, for MEMORY USAGE.
    pub fn memory_usage(&self) -> usize {
        let mut elems = 0;
        self.for_each(|m, _| elems += (OFF_LEN + varint_len(m.len()) + m.len() + 7) & !7);
        elems
            + match &self.repr {
                Repr::Listpack(v) => v.capacity() * 8,
                Repr::Skiplist(b) => {
                    std::mem::size_of::<Big>() + b.tree.heap_bytes() + b.dict.table.len() * 8
                }
            }
    }

    #[cfg(test)]
    fn check(&self) {
        match &self.repr {
            Repr::Listpack(v) => {
                for w in v.windows(2) {
                    assert_eq!(w[0].cmp_to(w[1].score(), w[1].member()), Ordering::Less);
                }
            }
            Repr::Skiplist(b) => {
                b.tree.check();
                assert_eq!(b.dict.len, b.tree.len);
                self.for_each(|m, _| assert!(!b.dict.find(m).is_null()));
            }
        }
    }
}

// SAFETY: the raw pointers inside (tree maxima, hash chains) only reference
// elements the value itself owns.
unsafe impl Send for ZSetValue {}
unsafe impl Sync for ZSetValue {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    const SMALL: Limits = Limits {
        max_entries: 8,
        max_value: 16,
    };

    fn model_sorted(m: &BTreeMap<Vec<u8>, f64>) -> Vec<(Vec<u8>, f64)> {
        let mut v: Vec<(Vec<u8>, f64)> = m.iter().map(|(k, s)| (k.clone(), *s)).collect();
        v.sort_by(|a, b| cmp_key(a.1, &a.0, b.1, &b.0));
        v
    }

    #[test]
    fn elem_layout_roundtrip() {
        for len in [0usize, 1, 127, 128, 300, 20000] {
            let m = vec![b'x'; len];
            let e = Elem::new(&m, -2.5);
            assert_eq!(e.member(), &m[..]);
            assert_eq!(e.score(), -2.5);
        }
    }

    #[test]
    fn big_tree_operations() {
        let lim = Limits {
            max_entries: 0,
            max_value: 0,
        };
        let mut z = ZSetValue::default();
        let n = 20000;
        for i in 0..n {
            let k = (i * 7919) % n;
            z.insert_new(format!("m{k}").as_bytes(), (k % 100) as f64, lim);
        }
        assert_eq!(z.encoding(), "skiplist");
        z.check();
        let v = z.to_vec();
        for (i, (m, s)) in v.iter().enumerate().step_by(97) {
            assert_eq!(z.rank(m), Some((i, *s)));
            assert_eq!(z.get(i), (&m[..], *s));
        }
        for i in (0..n).step_by(3) {
            assert!(z.remove(format!("m{i}").as_bytes()).is_some());
        }
        z.check();
        assert_eq!(z.remove_range(10, 5000), 4990);
        z.check();
        let popped = z.pop(100, true);
        assert_eq!(popped.len(), 100);
        z.check();
        let mut seen = std::collections::HashSet::new();
        let mut c = 0;
        loop {
            c = z.scan(c, 10, |m, _| {
                seen.insert(m.to_vec());
            });
            if c == 0 {
                break;
            }
        }
        assert_eq!(seen.len(), z.len());
    }

    #[test]
    fn ranges_and_bounds() {
        let mut z = ZSetValue::default();
        for (i, m) in ["a", "b", "c", "d", "e"].iter().enumerate() {
            z.insert_new(m.as_bytes(), i as f64, SMALL);
        }
        let b = |v: f64, excl| ScoreBound { value: v, excl };
        assert_eq!(z.score_range(b(1.0, false), b(3.0, false)), (1, 4));
        assert_eq!(z.score_range(b(1.0, true), b(3.0, true)), (2, 3));
        assert_eq!(z.score_range(b(3.0, false), b(1.0, false)), (0, 0));
        let l = |s: &str| LexBound::parse(s.as_bytes()).unwrap();
        assert_eq!(z.lex_range(&l("[b"), &l("(d")), (1, 3));
        assert_eq!(z.lex_range(&l("-"), &l("+")), (0, 5));
        assert_eq!(z.lex_range(&l("+"), &l("-")), (0, 0));
        let mut got = Vec::new();
        z.range(3, 3, true, |m, _| got.push(m.to_vec()));
        assert_eq!(got, vec![b"d".to_vec(), b"c".to_vec(), b"b".to_vec()]);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Add(u8, i8),
        Incr(u8, i8),
        Rem(u8),
        RemRange(u8, u8),
        Pop(u8, bool),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (any::<u8>(), any::<i8>()).prop_map(|(m, s)| Op::Add(m, s)),
            1 => (any::<u8>(), any::<i8>()).prop_map(|(m, s)| Op::Incr(m, s)),
            2 => any::<u8>().prop_map(Op::Rem),
            1 => (any::<u8>(), any::<u8>()).prop_map(|(a, b)| Op::RemRange(a, b)),
            1 => (0u8..5, any::<bool>()).prop_map(|(n, m)| Op::Pop(n, m)),
        ]
    }

    fn member(m: u8) -> Vec<u8> {
        // Some members exceed max_value to exercise that conversion too.
        if m.is_multiple_of(61) {
            format!("long-member-{m:0>20}").into_bytes()
        } else {
            format!("m{}", m % 97).into_bytes()
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn matches_model(ops in proptest::collection::vec(op(), 1..300), big in any::<bool>()) {
            let lim = if big { Limits { max_entries: 0, max_value: 0 } } else { SMALL };
            let mut z = ZSetValue::default();
            let mut m: BTreeMap<Vec<u8>, f64> = BTreeMap::new();
            let mut was_big = false;
            for o in ops {
                match o {
                    Op::Add(k, s) => {
                        let k = member(k);
                        let out = z.add(s as f64, &k, AddFlags::default(), lim).unwrap();
                        match m.insert(k, s as f64) {
                            None => prop_assert_eq!(out, AddOutcome::Added(s as f64)),
                            Some(old) if old == s as f64 => prop_assert_eq!(out, AddOutcome::Same(s as f64)),
                            Some(_) => prop_assert_eq!(out, AddOutcome::Updated(s as f64)),
                        }
                    }
                    Op::Incr(k, s) => {
                        let k = member(k);
                        let f = AddFlags { incr: true, ..Default::default() };
                        z.add(s as f64, &k, f, lim).unwrap();
                        *m.entry(k).or_insert(0.0) += s as f64;
                    }
                    Op::Rem(k) => {
                        let k = member(k);
                        prop_assert_eq!(z.remove(&k), m.remove(&k));
                    }
                    Op::RemRange(a, b) => {
                        let sorted = model_sorted(&m);
                        let (lo, hi) = ((a as usize).min(sorted.len()), (b as usize).min(sorted.len()));
                        let n = z.remove_range(lo, hi);
                        prop_assert_eq!(n, hi.saturating_sub(lo));
                        if hi > lo {
                            for (k, _) in &sorted[lo..hi] {
                                m.remove(k);
                            }
                        }
                    }
                    Op::Pop(n, max) => {
                        let mut sorted = model_sorted(&m);
                        if max { sorted.reverse(); }
                        let got = z.pop(n as usize, max);
                        let want: Vec<_> = sorted.into_iter().take(n as usize).collect();
                        for (k, _) in &want { m.remove(k); }
                        prop_assert_eq!(got, want);
                    }
                }
                z.check();
                was_big |= !z.is_listpack();
                // Redis 7.2 never converts back on deletes.
                prop_assert!(!(was_big && z.is_listpack()));
                if m.len() > lim.max_entries || m.keys().any(|k| k.len() > lim.max_value) {
                    prop_assert!(!z.is_listpack());
                }
                let want = model_sorted(&m);
                prop_assert_eq!(z.len(), want.len());
                prop_assert_eq!(z.to_vec(), want.clone());
                for (i, (k, s)) in want.iter().enumerate() {
                    prop_assert_eq!(z.rank(k), Some((i, *s)));
                    prop_assert_eq!(z.score(k), Some(*s));
                }
                if !want.is_empty() {
                    let mut rev = Vec::new();
                    z.range(want.len() - 1, want.len(), true, |k, s| rev.push((k.to_vec(), s)));
                    let mut w2 = want.clone();
                    w2.reverse();
                    prop_assert_eq!(rev, w2);
                }
                let lo = ScoreBound { value: -10.0, excl: true };
                let hi = ScoreBound { value: 20.0, excl: false };
                let (a, b) = z.score_range(lo, hi);
                let cnt = want.iter().filter(|(_, s)| *s > -10.0 && *s <= 20.0).count();
                prop_assert_eq!(b - a, cnt);
            }
            // Clones, digests and equality ignore the encoding.
            let mut other = z.clone();
            prop_assert_eq!(&other, &z);
            if other.is_listpack() { other.convert_to_skiplist(0) } else { other.convert_to_listpack() }
            other.check();
            prop_assert_eq!(&other, &z);
            let (mut h1, mut h2) = (sha1_smol::Sha1::new(), sha1_smol::Sha1::new());
            z.digest(&mut h1);
            other.digest(&mut h2);
            prop_assert_eq!(h1.digest().bytes(), h2.digest().bytes());
        }
    }
}
