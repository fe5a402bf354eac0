//! [`Damage`]: the parts of a display that must be composed again.

use crate::geom::Rect;

/// Most rectangles kept: past this, the bookkeeping costs more than the
/// pixels it saves, and the two whose union wastes least are merged.
const MAX_RECTS: usize = 16;

/// A set of rectangles that never overlap, merged when they do or when
/// there are too many. Fixed capacity: keeping damage never allocates.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Damage {
    rects: heapless::Vec<Rect, { MAX_RECTS + 1 }>,
}

impl Damage {
    /// No damage.
    pub fn new() -> Self {
        Damage::default()
    }
    /// Whether nothing is damaged.
    pub fn is_empty(&self) -> bool {
        self.rects.is_empty()
    }
    /// The damaged rectangles (they never overlap).
    pub fn rects(&self) -> &[Rect] {
        &self.rects
    }
    /// Forgets all damage.
    pub fn clear(&mut self) {
        self.rects.clear();
    }
    /// Total damaged pixels (rectangles never overlap).
    pub fn area(&self) -> i64 {
        self.rects.iter().map(Rect::area).sum()
    }

    /// Adds `r`, merging with any rectangle it overlaps so none overlap.
    pub fn add(&mut self, r: Rect) {
        if r.is_empty() {
            return;
        }
        self.insert(r);
        while self.rects.len() > MAX_RECTS {
            // The pair whose bounding box adds the fewest undamaged pixels.
            let mut best = (i64::MAX, 0, 1);
            for i in 0..self.rects.len() {
                for j in i + 1..self.rects.len() {
                    let (a, b) = (self.rects[i], self.rects[j]);
                    let waste = a.union(&b).area() - a.area() - b.area();
                    if waste < best.0 {
                        best = (waste, i, j);
                    }
                }
            }
            let (_, i, j) = best;
            let b = self.rects.swap_remove(j);
            let a = self.rects.swap_remove(i);
            self.insert(a.union(&b));
        }
    }

    /// Puts `r` in, merged with whatever it overlaps (repeatedly: a union
    /// may reach further rectangles). Leaves at most one more than before.
    fn insert(&mut self, mut r: Rect) {
        loop {
            let before = self.rects.len();
            self.rects.retain(|o| {
                if o.overlaps(&r) {
                    r = r.union(o);
                    false
                } else {
                    true
                }
            });
            if self.rects.len() == before {
                break;
            }
        }
        // Room by construction: callers keep at most MAX_RECTS before inserting.
        let _ = self.rects.push(r);
    }

    /// Adds every rectangle of `other`.
    pub fn add_all(&mut self, other: &Damage) {
        for r in &other.rects {
            self.add(*r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_rects_merge_and_distant_ones_do_not() {
        let mut d = Damage::new();
        d.add(Rect::new(0, 0, 10, 10));
        d.add(Rect::new(100, 100, 10, 10));
        assert_eq!(d.rects().len(), 2);
        d.add(Rect::new(5, 5, 10, 10));
        assert_eq!(d.rects().len(), 2);
        assert!(d.rects().contains(&Rect::new(0, 0, 15, 15)));
        d.add(Rect::new(0, 0, 200, 200));
        assert_eq!(d.rects(), &[Rect::new(0, 0, 200, 200)]);
    }

    #[test]
    fn too_many_rects_merge_the_closest_pair_not_everything() {
        let mut d = Damage::new();
        for i in 0..16 {
            d.add(Rect::new(i * 100, 0, 5, 5));
        }
        // The 17th lies next to the first: those two merge, the rest stay.
        d.add(Rect::new(6, 0, 5, 5));
        assert_eq!(d.rects().len(), 16);
        assert!(d.rects().contains(&Rect::new(0, 0, 11, 5)));
        assert!(d.rects().contains(&Rect::new(1500, 0, 5, 5)));
        assert_eq!(d.area(), 15 * 25 + 55);
    }
}
