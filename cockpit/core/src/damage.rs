//! [`Damage`]: the parts of a display that must be composed again.

use crate::geom::Rect;

/// Most rectangles kept before they are merged into their bounding box:
/// past this, the bookkeeping costs more than the pixels it saves.
const MAX_RECTS: usize = 16;

/// A set of rectangles, merged when they touch or when there are too many.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Damage {
    rects: Vec<Rect>,
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
        let mut r = r;
        // Merging may make the union overlap others: repeat until stable.
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
        self.rects.push(r);
        if self.rects.len() > MAX_RECTS {
            let all = self.rects.iter().fold(Rect::default(), |a, b| a.union(b));
            self.rects = vec![all];
        }
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
    fn too_many_rects_collapse_to_one() {
        let mut d = Damage::new();
        for i in 0..17 {
            d.add(Rect::new(i * 10, 0, 5, 5));
        }
        assert_eq!(d.rects(), &[Rect::new(0, 0, 165, 5)]);
    }
}
