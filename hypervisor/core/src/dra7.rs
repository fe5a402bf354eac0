//! TI DRA7 (J6) facts the hypervisor needs before its guests run, worked
//! out on the host: the realtime counter's rate and the secondary CPU's
//! start. The arch layer reads and writes the registers; what to write is
//! decided here.
//!
//! The Cortex-A15s' generic timer counts the SoC's realtime counter, which
//! must tick at 6.144 MHz whatever the system clock is: its incrementer
//! adds numerator/denominator of a tick per system-clock cycle. Boot
//! firmware may leave it unprogrammed, so the hypervisor programs it from
//! the system clock selected in CM_CLKSEL_SYS (as Linux and Xen do).
//!
//! The J6 has no PSCI: the second A15 waits in the boot ROM until
//! AuxCoreBoot1 holds its entry point and AuxCoreBoot0 says go, then an
//! event (SEV) or SGI wakes it. It starts outside HYP mode: its entry must
//! ask the ROM for HYP (the ROM's HYP-entry service, SMC with r12 = 0x102,
//! as Linux's and Xen's OMAP5 secondary paths do).
//!
//! Not handled yet: erratum i856 (DRA7 rev 1.0/1.1, or a board without a
//! 32 kHz crystal): Linux then programs 75/244 and sets CNTFRQ to match
//! through the ROM's secure service; the hypervisor must do the same and
//! report that rate.

/// The realtime counter's rate: the generic timer's CNTFRQ on DRA7.
pub const COUNTER_HZ: u64 = 6_144_000;

/// The system clock CM_CLKSEL_SYS[2:0] selects on DRA7, in Hz (`None`: a
/// value the SoC does not define). The order is the `sys_clkin1` mux's in
/// Linux's dra7xx-clocks.dtsi (its parents from 1: 12, 20, 16.8, 19.2, 26,
/// 27, 38.4 MHz; read from Debian's armhf dra7-evm.dtb). OMAP5's differs
/// (13 MHz at 2): a table copied from OMAP5 runs DRA7's timers fast.
pub fn sys_clk_hz(clksel: u32) -> Option<u64> {
    match clksel & 7 {
        1 => Some(12_000_000),
        2 => Some(20_000_000),
        3 => Some(16_800_000),
        4 => Some(19_200_000),
        5 => Some(26_000_000),
        6 => Some(27_000_000),
        7 => Some(38_400_000),
        _ => None,
    }
}

/// The incrementer's (numerator, denominator) for the system clock
/// `clksel` selects: the counter gains numerator/denominator per cycle, so
/// that it runs at [`COUNTER_HZ`]. Exact fractions by the clock's rate,
/// with denominators of 3000 to 4095 as the values TI's software programs
/// (Linux's `realtime_counter_init`) have.
pub fn incrementer(clksel: u32) -> Option<(u32, u32)> {
    Some(match sys_clk_hz(clksel)? {
        12_000_000 => (1664, 3250),
        16_800_000 => (1280, 3500),
        19_200_000 => (1040, 3250),
        20_000_000 => (960, 3125),
        26_000_000 => (768, 3250),
        27_000_000 => (768, 3375),
        38_400_000 => (520, 3250),
        _ => return None,
    })
}

/// The realtime counter's registers (from its base) and fields.
pub const INCREMENTER_NUMERATOR: u64 = 0x10;
pub const INCREMENTER_DENOMINATOR_RELOAD: u64 = 0x14;
/// The value field of both registers (the rest is kept as read).
const FIELD: u32 = 0xfff;
/// In the denominator register: load the new fraction.
const RELOAD: u32 = 1 << 16;

/// The numerator register's new value, from its old one.
pub fn numerator_register(old: u32, num: u32) -> u32 {
    (old & !FIELD) | (num & FIELD)
}

/// The denominator register's new value, from its old one, with the
/// reload bit that makes the counter take the new fraction.
pub fn denominator_register(old: u32, den: u32) -> u32 {
    (old & !FIELD) | (den & FIELD) | RELOAD
}

/// WakeupGen's AuxCoreBoot registers (from its base): where the second
/// CPU jumps, and the word that releases it from the boot ROM.
pub const AUX_CORE_BOOT_0: u64 = 0x800;
pub const AUX_CORE_BOOT_1: u64 = 0x804;
pub const AUX_CORE_BOOT_GO: u32 = 0x20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_system_clock_gives_the_counter_6_144_mhz() {
        for clksel in 1..=7 {
            let hz = sys_clk_hz(clksel).unwrap();
            let (num, den) = incrementer(clksel).unwrap();
            assert_eq!(
                hz * num as u64,
                COUNTER_HZ * den as u64,
                "clksel {clksel}: {num}/{den} of {hz} Hz"
            );
            assert!(
                (3000..4096).contains(&den) && num < 4096,
                "clksel {clksel}: {num}/{den}"
            );
        }
        for undefined in [0, 8] {
            assert_eq!(incrementer(undefined), None);
        }
    }

    /// The selector's order is DRA7's (dra7xx-clocks.dtsi), not OMAP5's:
    /// the EVM's 20 MHz is selector 2.
    #[test]
    fn the_selector_names_dra7_s_clocks() {
        assert_eq!(sys_clk_hz(2), Some(20_000_000));
        assert_eq!(sys_clk_hz(3), Some(16_800_000));
        assert_eq!(incrementer(2), Some((960, 3125)));
    }

    #[test]
    fn the_registers_keep_their_other_bits_and_the_denominator_reloads() {
        assert_eq!(numerator_register(0xabcd_e123, 1040), 0xabcd_e410);
        let d = denominator_register(0x0000_0fff, 3250);
        assert_eq!(d & 0xfff, 3250);
        assert_ne!(d & (1 << 16), 0, "reload");
    }
}
