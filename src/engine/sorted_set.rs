//! [`SortedSet`]: the ids one engine run needs, gathered as they come and read back sorted.
//!
//! Why not a `BTreeSet`: a run records a handful of needs (a device build: the account, the
//! device, its owner and the configuration documents), and a B-tree allocates a node, walks
//! it on every insertion, and walks it again to hand its ids to the resolver as a list
//! (about 3 000 instructions a warm request, by callgrind). Here an id is pushed onto a
//! `Vec`, and the list is sorted and rid of duplicates once, when it is read: the same
//! ascending order, so the store is asked for the same ids in the same order. Sorting once
//! keeps a huge fan-out (a group, or a request, naming tens of thousands of members) at
//! `n log n`, where keeping the list sorted on every insertion would move `n²/2` ids.

/// A set of `T`, read ascending and without duplicates.
#[derive(Debug, Clone)]
pub struct SortedSet<T>(Vec<T>);

impl<T> Default for SortedSet<T> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<T: Ord> SortedSet<T> {
    /// Adds `value` (a value added twice is read once).
    ///
    /// The first one makes room for [`SortedSet::FIRST_ROOM`]: a build's first run asks for
    /// six documents (the account, the caller, the target and three configuration
    /// documents), which a `Vec`'s first four places would make it grow again for.
    pub fn insert(&mut self, value: T) {
        if self.0.capacity() == 0 {
            self.0.reserve_exact(Self::FIRST_ROOM);
        }
        self.0.push(value);
    }

    /// The room made at the first insertion.
    pub const FIRST_ROOM: usize = 8;

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The values, ascending, each once.
    pub fn into_vec(mut self) -> Vec<T> {
        self.0.sort_unstable();
        self.0.dedup();
        self.0
    }
}

/// Equal when they hold the same values, however often and in whatever order they were
/// added.
impl<T: Ord + Clone> PartialEq for SortedSet<T> {
    fn eq(&self, other: &Self) -> bool {
        self.clone().into_vec() == other.clone().into_vec()
    }
}

impl<T: Ord + Clone> Eq for SortedSet<T> {}

impl<T: Ord> Extend<T> for SortedSet<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, values: I) {
        self.0.extend(values);
    }
}

impl<T: Ord> IntoIterator for SortedSet<T> {
    type Item = T;
    type IntoIter = std::vec::IntoIter<T>;
    fn into_iter(self) -> Self::IntoIter {
        self.into_vec().into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::SortedSet;
    use std::collections::BTreeSet;

    #[test]
    fn reads_what_a_btree_set_holds_in_its_order() {
        let values = ["d", "b", "a", "d", "c", "b", "e", "a"];
        let mut set = SortedSet::default();
        let mut tree = BTreeSet::new();
        assert!(set.is_empty());
        for v in values {
            set.insert(v);
            tree.insert(v);
        }
        assert!(!set.is_empty());
        let mut other = SortedSet::default();
        other.extend(["e", "a", "c", "b", "d"]);
        assert_eq!(set, other, "the same values, added otherwise");
        assert_eq!(set.clone().into_vec(), ["a", "b", "c", "d", "e"]);
        assert_eq!(
            set.into_iter().collect::<Vec<_>>(),
            tree.into_iter().collect::<Vec<_>>(),
            "same values, same order"
        );
    }

    /// Tens of thousands of ids, many twice, arriving in descending order (the worst case for
    /// a list kept sorted on insertion): read back as a `BTreeSet` would, at sorting's cost.
    #[test]
    fn a_huge_fan_out_is_read_back_sorted_once() {
        let mut set = SortedSet::default();
        let mut tree = BTreeSet::new();
        for i in (0..60_000u32).rev() {
            let id = format!("{:032}", i / 2);
            set.insert(id.clone());
            tree.insert(id);
        }
        let read = set.into_vec();
        assert_eq!(read.len(), 30_000);
        assert_eq!(read, tree.into_iter().collect::<Vec<_>>());
    }
}
