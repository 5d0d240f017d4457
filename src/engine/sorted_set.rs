//! [`SortedSet`]: a set kept as a sorted list, for the few ids one engine run needs.
//!
//! Why not a `BTreeSet`: a run records a handful of needs (a device build: the account, the
//! device, its owner and the configuration documents), and a B-tree allocates a node, walks
//! it on every insertion, and walks it again to hand its ids to the resolver as a list
//! (about 3 000 instructions a warm request, by callgrind). A sorted `Vec` holds them in one
//! allocation, finds a duplicate by binary search, and is the list. The order is the same
//! ascending order, so the store is asked for the same ids in the same order.

/// A set of `T`, ascending, without duplicates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortedSet<T>(Vec<T>);

impl<T> Default for SortedSet<T> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<T: Ord> SortedSet<T> {
    /// Adds `value`; `false` when it was there already.
    pub fn insert(&mut self, value: T) -> bool {
        match self.0.binary_search(&value) {
            Ok(_) => false,
            Err(at) => {
                self.0.insert(at, value);
                true
            }
        }
    }

    /// Whether `value` is in the set.
    pub fn contains(&self, value: &T) -> bool {
        self.0.binary_search(value).is_ok()
    }
}

impl<T> SortedSet<T> {
    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many values the set holds.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The values, ascending.
    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.0.iter()
    }

    /// The values, ascending, as a list.
    pub fn into_vec(self) -> Vec<T> {
        self.0
    }
}

impl<T: Ord> Extend<T> for SortedSet<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, values: I) {
        for v in values {
            self.insert(v);
        }
    }
}

impl<T: Ord> FromIterator<T> for SortedSet<T> {
    fn from_iter<I: IntoIterator<Item = T>>(values: I) -> Self {
        let mut set = Self::default();
        set.extend(values);
        set
    }
}

impl<T> IntoIterator for SortedSet<T> {
    type Item = T;
    type IntoIter = std::vec::IntoIter<T>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::SortedSet;
    use std::collections::BTreeSet;

    #[test]
    fn holds_what_a_btree_set_holds_in_its_order() {
        let values = ["d", "b", "a", "d", "c", "b", "e", "a"];
        let mut set = SortedSet::default();
        let mut tree = BTreeSet::new();
        for v in values {
            assert_eq!(set.insert(v), tree.insert(v), "insert {v}");
        }
        assert_eq!(set.len(), 5);
        assert!(set.contains(&"c") && !set.contains(&"z"));
        assert_eq!(
            set.iter().copied().collect::<Vec<_>>(),
            ["a", "b", "c", "d", "e"]
        );
        assert_eq!(
            set.into_vec(),
            tree.into_iter().collect::<Vec<_>>(),
            "same values, same order"
        );
    }
}
