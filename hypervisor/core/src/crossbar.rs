//! TI's IRQ crossbar (DRA7, the J6): which GIC line each passed-through
//! peripheral interrupt takes, and the register writes that route it.
//!
//! On DRA7 a peripheral's interrupt is a crossbar *input*; the crossbar
//! routes up to `lines` of its inputs to GIC SPIs (line `n` is SPI `n`,
//! INTID 32 + n), one 16-bit register per line. Some lines are wired to
//! fixed sources (reserved: they have no register) and some do not exist
//! (skipped: they keep their register but are never routed). The
//! hypervisor owns the crossbar: it routes the inputs the description
//! gives domains and nothing else, so a guest sees a plain SPI and cannot
//! reach another's interrupt. The facts come from the board file, checked
//! against the board's device tree (`ti,irq-crossbar`).

/// A crossbar as the board describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Crossbar {
    /// GIC lines behind the crossbar (at most [`MAX_LINES`]).
    pub lines: u16,
    /// Crossbar inputs (peripheral interrupts).
    pub sources: u16,
    /// Bytes per line's register (DRA7: 2).
    pub reg_size: u8,
    /// Lines wired to fixed sources: no register, never routed.
    pub reserved: LineSet,
    /// Lines that do not exist: a register, never routed.
    pub skip: LineSet,
}

/// The most GIC lines a crossbar here may have (DRA7 has 160).
pub const MAX_LINES: usize = 256;

/// A set of crossbar lines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LineSet([u32; MAX_LINES / 32]);

impl LineSet {
    pub fn from_lines(lines: &[u32]) -> Option<LineSet> {
        let mut s = LineSet::default();
        for &l in lines {
            let word = s.0.get_mut(l as usize / 32)?;
            *word |= 1 << (l % 32);
        }
        Some(s)
    }

    pub fn contains(&self, line: u16) -> bool {
        self.0
            .get(line as usize / 32)
            .is_some_and(|w| w & (1 << (line % 32)) != 0)
    }

    fn insert(&mut self, line: u16) {
        if let Some(w) = self.0.get_mut(line as usize / 32) {
            *w |= 1 << (line % 32);
        }
    }
}

/// One routed input: its line (GIC SPI `line`, INTID 32 + line).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    pub input: u16,
    pub line: u16,
}

impl Route {
    /// The INTID the domain's device tree names for this interrupt.
    pub fn intid(&self) -> u32 {
        32 + self.line as u32
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrossbarError {
    /// The crossbar has no such input.
    NoSuchInput { input: u16, sources: u16 },
    /// An input asked for twice (two domains, or one twice).
    Twice { input: u16 },
    /// Every line that can be routed is taken.
    OutOfLines { input: u16 },
    /// The board's facts do not describe a crossbar this code can drive.
    BadBoard,
}

/// The most inputs one description may route.
pub const MAX_ROUTES: usize = 64;

impl Crossbar {
    fn valid(&self) -> bool {
        (1..=MAX_LINES as u16).contains(&self.lines) && matches!(self.reg_size, 1 | 2 | 4)
    }

    /// Whether `line` may carry a routed input.
    fn routable(&self, line: u16) -> bool {
        line < self.lines && !self.reserved.contains(line) && !self.skip.contains(line)
    }

    /// Where `line`'s register is, from the crossbar's base: registers
    /// follow each other, reserved lines having none. `None` for a
    /// reserved line or one the crossbar does not have.
    pub fn register_offset(&self, line: u16) -> Option<u32> {
        if !self.valid() || line >= self.lines || self.reserved.contains(line) {
            return None;
        }
        let below = (0..line).filter(|&l| !self.reserved.contains(l)).count() as u32;
        Some(below * self.reg_size as u32)
    }

    /// Routes each of `inputs` to a line of its own, from the highest line
    /// down (as Linux allocates them, leaving the low lines that boot
    /// firmware tends to use). Deterministic: the same description always
    /// gives the same lines.
    pub fn plan(&self, inputs: &[u16]) -> Result<heapless::Vec<Route, MAX_ROUTES>, CrossbarError> {
        if !self.valid() {
            return Err(CrossbarError::BadBoard);
        }
        let mut taken = LineSet::default();
        let mut routes = heapless::Vec::new();
        let mut next = self.lines;
        for (i, &input) in inputs.iter().enumerate() {
            if input >= self.sources {
                return Err(CrossbarError::NoSuchInput {
                    input,
                    sources: self.sources,
                });
            }
            if inputs[..i].contains(&input) {
                return Err(CrossbarError::Twice { input });
            }
            let line = loop {
                if next == 0 {
                    return Err(CrossbarError::OutOfLines { input });
                }
                next -= 1;
                if self.routable(next) && !taken.contains(next) {
                    break next;
                }
            };
            taken.insert(line);
            routes
                .push(Route { input, line })
                .map_err(|_| CrossbarError::OutOfLines { input })?;
        }
        Ok(routes)
    }

    /// Every register write that programs the crossbar for `routes`:
    /// (offset from the base, value). Routed lines get their input; every
    /// other line with a register, skipped ones aside, gets `safe` (the
    /// board's safe input), so nothing a boot loader left routed reaches a
    /// domain's SPI.
    pub fn writes<'a>(
        &'a self,
        routes: &'a [Route],
        safe: u16,
    ) -> impl Iterator<Item = (u32, u16)> + 'a {
        (0..self.lines)
            .filter(|&l| !self.skip.contains(l))
            .filter_map(move |line| {
                let value = routes
                    .iter()
                    .find(|r| r.line == line)
                    .map_or(safe, |r| r.input);
                Some((self.register_offset(line)?, value))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// DRA7's crossbar, as dra7.dtsi gives it.
    fn dra7() -> Crossbar {
        Crossbar {
            lines: 160,
            sources: 400,
            reg_size: 2,
            reserved: LineSet::from_lines(&[0, 1, 2, 3, 5, 6, 131, 132]).unwrap(),
            skip: LineSet::from_lines(&[10, 133, 139, 140]).unwrap(),
        }
    }

    #[test]
    fn registers_follow_each_other_without_the_reserved_lines() {
        let x = dra7();
        // Lines 0-3 are reserved: line 4 has the first register.
        assert_eq!(x.register_offset(4), Some(0));
        assert_eq!(x.register_offset(7), Some(2), "5 and 6 are reserved too");
        // A skipped line keeps its register.
        assert_eq!(x.register_offset(10), Some(8));
        assert_eq!(x.register_offset(130), Some((130 - 6) * 2));
        assert_eq!(
            x.register_offset(133),
            Some((133 - 8) * 2),
            "131 and 132 have none"
        );
        for none in [0, 3, 5, 6, 131, 132, 160, 400] {
            assert_eq!(x.register_offset(none), None, "line {none}");
        }
    }

    #[test]
    fn inputs_take_the_highest_free_lines_and_never_reserved_or_skipped_ones() {
        let x = dra7();
        // UART1 (input 67) and McASP3 (150, 151).
        let routes = x.plan(&[67, 150, 151]).unwrap();
        assert_eq!(
            routes.as_slice(),
            &[
                Route {
                    input: 67,
                    line: 159
                },
                Route {
                    input: 150,
                    line: 158
                },
                Route {
                    input: 151,
                    line: 157
                }
            ]
        );
        assert_eq!(routes[0].intid(), 191);
        // Enough inputs to reach the holes: none lands on one.
        let all: heapless::Vec<u16, 64> = (200..264).collect();
        let routes = x.plan(&all).unwrap();
        for r in &routes {
            assert!(
                !x.reserved.contains(r.line) && !x.skip.contains(r.line),
                "{r:?}"
            );
        }
        let mut lines: heapless::Vec<u16, 64> = routes.iter().map(|r| r.line).collect();
        lines.sort_unstable();
        assert!(lines.windows(2).all(|w| w[0] != w[1]), "each line once");
        assert!(
            routes.iter().any(|r| r.line == 138),
            "past 139 and 140, skipped"
        );
    }

    #[test]
    fn bad_descriptions_are_refused() {
        let x = dra7();
        assert_eq!(
            x.plan(&[400]),
            Err(CrossbarError::NoSuchInput {
                input: 400,
                sources: 400
            })
        );
        assert_eq!(
            x.plan(&[67, 68, 67]),
            Err(CrossbarError::Twice { input: 67 })
        );
        // A crossbar with two routable lines: a third input finds none.
        let small = Crossbar {
            lines: 4,
            reserved: LineSet::from_lines(&[0]).unwrap(),
            skip: LineSet::from_lines(&[2]).unwrap(),
            ..x
        };
        assert_eq!(
            small
                .plan(&[1, 2])
                .unwrap()
                .iter()
                .map(|r| r.line)
                .collect::<heapless::Vec<u16, 4>>()
                .as_slice(),
            &[3, 1]
        );
        assert_eq!(
            small.plan(&[1, 2, 3]),
            Err(CrossbarError::OutOfLines { input: 3 })
        );
        assert_eq!(
            Crossbar { reg_size: 3, ..x }.plan(&[1]),
            Err(CrossbarError::BadBoard)
        );
        assert_eq!(LineSet::from_lines(&[256]), None);
    }

    #[test]
    fn programming_routes_the_planned_inputs_and_parks_every_other_line() {
        let x = dra7();
        let routes = x.plan(&[67]).unwrap();
        let writes: heapless::Vec<(u32, u16), 160> = x.writes(&routes, 0).collect();
        // 160 lines, 8 reserved (no register), 4 skipped (left alone).
        assert_eq!(writes.len(), 148);
        assert!(writes.contains(&(x.register_offset(159).unwrap(), 67)));
        assert_eq!(
            writes.iter().filter(|(_, v)| *v != 0).count(),
            1,
            "only the routed line carries an input"
        );
        assert!(
            !writes
                .iter()
                .any(|(o, _)| *o == x.register_offset(10).unwrap()),
            "skipped line 10 is not written"
        );
    }
}
