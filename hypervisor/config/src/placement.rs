//! Gives memory to domains that have no `memory_base`: first fit in the
//! board's guest RAM, 2 MiB aligned, around memory already taken.

use crate::Region;

fn align_up(v: u64, align: u64) -> Option<u64> {
    v.checked_add(align - 1).map(|x| x / align * align)
}

fn align_down(v: u64, align: u64) -> u64 {
    v / align * align
}

/// Free `align`-aligned gaps of `area` not covered by `taken`, lowest first.
pub(crate) fn gaps(area: Region, taken: &[Region], align: u64) -> Vec<Region> {
    let mut taken: Vec<Region> = taken.to_vec();
    taken.sort_by_key(|r| r.base);
    let area_end = align_down(area.end(), align);
    let mut out = Vec::new();
    let Some(mut cursor) = align_up(area.base, align) else { return out };
    for t in &taken {
        if t.end() <= cursor {
            continue;
        }
        if t.base >= area_end {
            break;
        }
        let gap_end = align_down(t.base, align);
        if gap_end > cursor {
            out.push(Region { base: cursor, size: gap_end - cursor });
        }
        match align_up(t.end(), align) {
            Some(next) => cursor = cursor.max(next),
            None => return out,
        }
    }
    if area_end > cursor {
        out.push(Region { base: cursor, size: area_end - cursor });
    }
    out
}

/// The lowest `align`-aligned base where `size` bytes fit in `area` without
/// touching `taken`.
pub(crate) fn first_fit(area: Region, taken: &[Region], size: u64, align: u64) -> Option<u64> {
    gaps(area, taken, align).into_iter().find(|g| g.size >= size).map(|g| g.base)
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: u64 = 1 << 20;
    const AREA: Region = Region { base: 0x6000_0000, size: 64 * M };

    #[test]
    fn empty_area_fits_at_base() {
        assert_eq!(first_fit(AREA, &[], 16 * M, 2 * M), Some(0x6000_0000));
        assert_eq!(first_fit(AREA, &[], 64 * M, 2 * M), Some(0x6000_0000));
        assert_eq!(first_fit(AREA, &[], 66 * M, 2 * M), None);
    }

    #[test]
    fn skips_taken_and_aligns() {
        let taken = [Region { base: 0x6000_0000, size: 3 * M }, Region { base: 0x6100_0000, size: 16 * M }];
        // The 3 MiB region leaves a gap from 4 MiB (aligned) to 16 MiB.
        assert_eq!(first_fit(AREA, &taken, 12 * M, 2 * M), Some(0x6040_0000));
        assert_eq!(first_fit(AREA, &taken, 14 * M, 2 * M), Some(0x6200_0000));
        assert_eq!(
            gaps(AREA, &taken, 2 * M),
            vec![Region { base: 0x6040_0000, size: 12 * M }, Region { base: 0x6200_0000, size: 32 * M }]
        );
        assert_eq!(first_fit(AREA, &taken, 34 * M, 2 * M), None);
    }

    #[test]
    fn ignores_regions_outside_the_area() {
        let taken = [Region { base: 0x1000_0000, size: 16 * M }, Region { base: 0x7000_0000, size: 16 * M }];
        assert_eq!(gaps(AREA, &taken, 2 * M), vec![AREA]);
    }
}
