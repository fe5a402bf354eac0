//! A guest's banked registers: the SP, LR and SPSR of each of its modes,
//! and FIQ mode's r8-r12. HYP mode leaves them in the CPU and reaches
//! them with the virtualization extensions' banked `mrs`/`msr`.
//!
//! A mode value that is not a guest mode reads as zero and ignores writes
//! (SPSR_hyp holds whatever the guest left; the glue passes its mode on).

use super::entry::{MODE_FIQ, MODE_SYS, MODE_USR};

const MODE_IRQ: u32 = 0x12;
const MODE_SVC: u32 = 0x13;
const MODE_ABT: u32 = 0x17;
const MODE_UND: u32 = 0x1b;

macro_rules! mrs_banked {
    ($name:literal) => {{
        let v: u32;
        // SAFETY: reading a guest mode's banked register from HYP mode has
        // no memory effects.
        unsafe { core::arch::asm!(".arch_extension virt", concat!("mrs {}, ", $name), out(reg) v, options(nomem, nostack)) };
        v
    }};
}

macro_rules! msr_banked {
    ($name:literal, $v:expr) => {{
        let v: u32 = $v;
        // SAFETY: writes a guest mode's banked register, which only that
        // guest's code uses; HYP mode's own state is not among them.
        unsafe { core::arch::asm!(".arch_extension virt", concat!("msr ", $name, ", {}"), in(reg) v, options(nomem, nostack)) };
    }};
}

pub fn sp(mode: u32) -> u32 {
    match mode {
        MODE_USR | MODE_SYS => mrs_banked!("sp_usr"),
        MODE_FIQ => mrs_banked!("sp_fiq"),
        MODE_IRQ => mrs_banked!("sp_irq"),
        MODE_SVC => mrs_banked!("sp_svc"),
        MODE_ABT => mrs_banked!("sp_abt"),
        MODE_UND => mrs_banked!("sp_und"),
        _ => 0,
    }
}

pub fn set_sp(mode: u32, v: u32) {
    match mode {
        MODE_USR | MODE_SYS => msr_banked!("sp_usr", v),
        MODE_FIQ => msr_banked!("sp_fiq", v),
        MODE_IRQ => msr_banked!("sp_irq", v),
        MODE_SVC => msr_banked!("sp_svc", v),
        MODE_ABT => msr_banked!("sp_abt", v),
        MODE_UND => msr_banked!("sp_und", v),
        _ => {}
    }
}

/// LR of a privileged mode (User and System mode's is in the frame).
pub fn lr(mode: u32) -> u32 {
    match mode {
        MODE_FIQ => mrs_banked!("lr_fiq"),
        MODE_IRQ => mrs_banked!("lr_irq"),
        MODE_SVC => mrs_banked!("lr_svc"),
        MODE_ABT => mrs_banked!("lr_abt"),
        MODE_UND => mrs_banked!("lr_und"),
        _ => 0,
    }
}

pub fn set_lr(mode: u32, v: u32) {
    match mode {
        MODE_FIQ => msr_banked!("lr_fiq", v),
        MODE_IRQ => msr_banked!("lr_irq", v),
        MODE_SVC => msr_banked!("lr_svc", v),
        MODE_ABT => msr_banked!("lr_abt", v),
        MODE_UND => msr_banked!("lr_und", v),
        _ => {}
    }
}

pub fn set_spsr(mode: u32, v: u32) {
    match mode {
        MODE_FIQ => msr_banked!("spsr_fiq", v),
        MODE_IRQ => msr_banked!("spsr_irq", v),
        MODE_SVC => msr_banked!("spsr_svc", v),
        MODE_ABT => msr_banked!("spsr_abt", v),
        MODE_UND => msr_banked!("spsr_und", v),
        _ => {}
    }
}

pub fn fiq_r(r: u8) -> u32 {
    match r {
        8 => mrs_banked!("r8_fiq"),
        9 => mrs_banked!("r9_fiq"),
        10 => mrs_banked!("r10_fiq"),
        11 => mrs_banked!("r11_fiq"),
        12 => mrs_banked!("r12_fiq"),
        _ => 0,
    }
}

pub fn set_fiq_r(r: u8, v: u32) {
    match r {
        8 => msr_banked!("r8_fiq", v),
        9 => msr_banked!("r9_fiq", v),
        10 => msr_banked!("r10_fiq", v),
        11 => msr_banked!("r11_fiq", v),
        12 => msr_banked!("r12_fiq", v),
        _ => {}
    }
}

/// Every banked register of every guest mode, in one order, for a
/// context switch: SP_usr, then SP, LR, SPSR of SVC, ABT, UND, IRQ, FIQ,
/// then r8-r12 of FIQ.
pub const COUNT: usize = 1 + 5 * 3 + 5;

pub fn save(out: &mut [u32; COUNT]) {
    out[0] = sp(MODE_USR);
    for (i, &m) in [MODE_SVC, MODE_ABT, MODE_UND, MODE_IRQ, MODE_FIQ].iter().enumerate() {
        out[1 + 3 * i] = sp(m);
        out[2 + 3 * i] = lr(m);
        out[3 + 3 * i] = spsr(m);
    }
    for r in 8..=12u8 {
        out[16 + (r as usize - 8)] = fiq_r(r);
    }
}

pub fn restore(v: &[u32; COUNT]) {
    set_sp(MODE_USR, v[0]);
    for (i, &m) in [MODE_SVC, MODE_ABT, MODE_UND, MODE_IRQ, MODE_FIQ].iter().enumerate() {
        set_sp(m, v[1 + 3 * i]);
        set_lr(m, v[2 + 3 * i]);
        set_spsr(m, v[3 + 3 * i]);
    }
    for r in 8..=12u8 {
        set_fiq_r(r, v[16 + (r as usize - 8)]);
    }
}

fn spsr(mode: u32) -> u32 {
    match mode {
        MODE_FIQ => mrs_banked!("spsr_fiq"),
        MODE_IRQ => mrs_banked!("spsr_irq"),
        MODE_SVC => mrs_banked!("spsr_svc"),
        MODE_ABT => mrs_banked!("spsr_abt"),
        MODE_UND => mrs_banked!("spsr_und"),
        _ => 0,
    }
}
