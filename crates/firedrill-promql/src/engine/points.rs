//! The points of one series during evaluation.

use std::ops::{Deref, DerefMut};

use crate::storage::Sample;

/// A series' points: no point, one point held inline, or a vector.
///
/// An instant query evaluates every expression over a one-step grid, so almost every
/// intermediate series has exactly one point; keeping it inline saves an allocation per series
/// and operator. Reads go through `Deref<Target = [Sample]>`.
#[derive(Clone, Debug, Default)]
pub(crate) enum Points {
    /// No point.
    #[default]
    Empty,
    /// Exactly one point.
    One(Sample),
    /// Any number of points.
    Many(Vec<Sample>),
}

impl Points {
    /// Appends a point.
    pub fn push(&mut self, s: Sample) {
        match self {
            Points::Empty => *self = Points::One(s),
            Points::One(a) => *self = Points::Many(vec![*a, s]),
            Points::Many(v) => v.push(s),
        }
    }

    /// Keeps the points for which `f` (which may modify them) returns true.
    pub fn retain_mut(&mut self, mut f: impl FnMut(&mut Sample) -> bool) {
        match self {
            Points::Empty => {}
            Points::One(a) => {
                if !f(a) {
                    *self = Points::Empty;
                }
            }
            Points::Many(v) => v.retain_mut(f),
        }
    }

    /// Appends all points of `other`.
    pub fn append(&mut self, other: Points) {
        match (&mut *self, other) {
            (_, Points::Empty) => {}
            (Points::Empty, o) => *self = o,
            (Points::Many(v), o) => v.extend_from_slice(&o),
            (Points::One(a), o) => {
                let mut v = Vec::with_capacity(1 + o.len());
                v.push(*a);
                v.extend_from_slice(&o);
                *self = Points::Many(v);
            }
        }
    }

    /// The points as a vector.
    pub fn into_vec(self) -> Vec<Sample> {
        match self {
            Points::Empty => Vec::new(),
            Points::One(a) => vec![a],
            Points::Many(v) => v,
        }
    }
}

impl From<Vec<Sample>> for Points {
    fn from(v: Vec<Sample>) -> Self {
        Points::Many(v)
    }
}

impl FromIterator<Sample> for Points {
    fn from_iter<I: IntoIterator<Item = Sample>>(iter: I) -> Self {
        let mut it = iter.into_iter();
        let Some(first) = it.next() else {
            return Points::Empty;
        };
        let Some(second) = it.next() else {
            return Points::One(first);
        };
        let mut v = Vec::with_capacity(2 + it.size_hint().0);
        v.push(first);
        v.push(second);
        v.extend(it);
        Points::Many(v)
    }
}

impl Deref for Points {
    type Target = [Sample];

    fn deref(&self) -> &[Sample] {
        match self {
            Points::Empty => &[],
            Points::One(a) => std::slice::from_ref(a),
            Points::Many(v) => v,
        }
    }
}

impl DerefMut for Points {
    fn deref_mut(&mut self) -> &mut [Sample] {
        match self {
            Points::Empty => &mut [],
            Points::One(a) => std::slice::from_mut(a),
            Points::Many(v) => v,
        }
    }
}

impl<'a> IntoIterator for &'a Points {
    type Item = &'a Sample;
    type IntoIter = std::slice::Iter<'a, Sample>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<'a> IntoIterator for &'a mut Points {
    type Item = &'a mut Sample;
    type IntoIter = std::slice::IterMut<'a, Sample>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_from_inline_to_vector() {
        let mut p = Points::default();
        assert!(p.is_empty());
        p.push(Sample::new(1, 1.0));
        assert!(matches!(p, Points::One(_)));
        p.push(Sample::new(2, 2.0));
        p.push(Sample::new(3, 3.0));
        assert_eq!(p.iter().map(|s| s.t).collect::<Vec<_>>(), [1, 2, 3]);
        p.retain_mut(|s| s.t != 2);
        assert_eq!(p.len(), 2);
        let mut q: Points = [Sample::new(0, 0.0)].into_iter().collect();
        q.retain_mut(|s| {
            s.v = 5.0;
            true
        });
        q.append(p);
        assert_eq!(q.iter().map(|s| s.v).collect::<Vec<_>>(), [5.0, 1.0, 3.0]);
        assert_eq!(q.into_vec().len(), 3);
    }
}
