//! The nearest-neighbour gather without per-pixel bounds checks: its
//! columns were checked against the row once ([`Columns::for_row`]).
#![allow(unsafe_code)]

use crate::Columns;

pub(crate) fn gather(out: &mut [u32], row: &[u32], cols: &Columns, or: u32) {
    let xs = cols.for_row(out.len(), row.len());
    for (o, &x) in out.iter_mut().zip(xs) {
        // SAFETY: `for_row` checked that every column is below `row.len()`.
        *o = unsafe { *row.get_unchecked(x as usize) } | or;
    }
}
