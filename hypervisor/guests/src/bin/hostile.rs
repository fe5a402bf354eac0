//! A hostile guest: it does what an attacker in a domain can, in a random
//! order, and never stops. Random SMCCC/PSCI calls (over HVC and SMC),
//! Xen-tagged hypercalls with random numbers and arguments (and, offered
//! Xen's ABI, the served ones with random structures in its own memory and
//! a scribbled xenstore ring), trapped system (or coprocessor)
//! register accesses, random loads and stores on its vGIC and vUART, and
//! wild loads and stores outside its memory. Every exception it gets is
//! stepped over. (It never waits for an interrupt: it arms no timer, so
//! nothing would wake it.) After each round of attacks it asks for a reset
//! (SYSTEM_RESET), so the domain is restarted again and again. What the
//! test judges is the others: a heartbeat beside it must stay consecutive.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod guest {
    use core::sync::atomic::{AtomicU64, Ordering};
    use hv_test_guests::*;
    use xen_abi::{guest_layout as gl, psci};

    /// Attacks per round, before the reset.
    const ROUND: u64 = 600;
    static EXCEPTIONS: AtomicU64 = AtomicU64::new(0);

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            // xorshift64*
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
    }

    /// A guest-chosen address: its own devices, holes between them, and
    /// memory that is not its own (never its own RAM, so it keeps running).
    fn wild_address(rng: &mut Rng) -> u64 {
        let r = rng.next();
        let a = match r % 6 {
            0 => gl::GICD_BASE + (r >> 8) % gl::GICD_SIZE,
            1 => gl::GICR_BASE + (r >> 8) % gl::GICR_REGION_SIZE,
            2 => gl::PL011_BASE + 4 + (r >> 8) % (gl::PL011_SIZE - 4), // not the data register
            3 => (r >> 8) % gl::RAM0_BASE,                              // below RAM: holes, other devices
            4 => gl::RAM0_BASE + (64 << 20) + (r >> 8) % (1 << 30),      // beyond its RAM
            _ => (r >> 8) % (1 << 40),                                  // anywhere the IPA space reaches
        };
        a & !7
    }

    /// Scratch memory in its own RAM for hypercall arguments: random bytes
    /// the hypervisor must read as structures and refuse or serve.
    #[repr(C, align(4096))]
    struct Scratch([u64; 1024]);
    static mut SCRATCH: Scratch = Scratch([0; 1024]);

    /// The hypercalls the hypervisor serves when the domain is offered
    /// Xen's ABI (`[domain.xen]`), their sub-operations and argument
    /// structures filled with random bytes in its own memory (its MMU is
    /// off, so addresses are IPAs); its xenstore ring page scribbled over,
    /// then kicked. Shutdowns are left out (they would end the round).
    fn xen_attack(rng: &mut Rng) {
        const SERVED: [u64; 8] = [17, 12, 20, 21, 24, 29, 32, 34];
        let base = core::ptr::addr_of!(SCRATCH) as u64;
        for i in 0..64 {
            // SAFETY: its own static, written only here on its only vCPU.
            unsafe { core::ptr::write_volatile((base as *mut u64).add(rng.next() as usize % 1024), rng.next() >> (i % 3 * 16)) };
        }
        let nr = SERVED[rng.next() as usize % SERVED.len()];
        let sub = rng.next() % 30;
        // Not its own shutdown, nor a watchdog it would let run out: those
        // end it by its own hand, which is not what this test is about.
        if nr == 29 && (sub == 2 || sub == 6) {
            return;
        }
        // Pointers into the scratch page, some near its end (a structure
        // crossing into the next page), some wild.
        let ptr = |rng: &mut Rng| match rng.next() % 4 {
            0 => base + 4096 - 8,
            1 => rng.next(),
            _ => base + (rng.next() % 4096 & !7),
        };
        let (p1, p2) = (ptr(rng), ptr(rng));
        xen_hypercall_raw(nr, [sub, p1, rng.next() % 8, p2, rng.next()]);
        if rng.next() % 8 == 0 {
            // Its store ring (the last page of its 16 MiB): random bytes and
            // indices, then EVTCHNOP_send on port 1 (the store's).
            let ring = gl::RAM0_BASE + (16 << 20) - 4096;
            for _ in 0..16 {
                let at = ring + (rng.next() % 4096 & !3);
                // SAFETY: a word of its own RAM (its store ring page).
                unsafe { core::ptr::write_volatile(at as *mut u32, rng.next() as u32) };
            }
            // SAFETY: its own static.
            unsafe { core::ptr::write_volatile(base as *mut u32, 1) };
            xen_hypercall_raw(32, [4, base, 0, 0, 0]);
        }
    }

    fn attack(rng: &mut Rng) {
        let r = rng.next();
        let (a, b, c) = (rng.next(), rng.next(), rng.next());
        match r % 7 {
            0 | 1 => {
                // SMCCC: the PSCI range, its 64-bit twin, or anything.
                let fid = match r >> 8 & 3 {
                    0 => 0x8400_0000 | (a as u32 & 0x1f),
                    1 => 0xc400_0000 | (a as u32 & 0x1f),
                    _ => a as u32,
                };
                // Suspending or switching off its only vCPU (nothing would wake
                // it: it arms no timer), or the machine, is not an attack on
                // anyone else: leave those to the test of PSCI.
                if matches!(fid & 0xbfff_ffff, 0x8400_0001 | 0x8400_0002 | 0x8400_0008 | 0x8400_0009) {
                    return;
                }
                if r & 0x100 == 0 {
                    hvc_call(fid, b, c, a);
                } else {
                    smc_call(fid, b);
                }
            }
            2 => {
                xen_hypercall_raw(a % 64, [b, c, a ^ b, rng.next(), rng.next()]);
            }
            3 => xen_attack(rng),
            // Trapped registers: SGIs, the PMU, debug (and on Armv7-A,
            // implementation-defined CP15, set/way, a failed condition).
            4 => trapped_register_access(b, c),
            5 => {
                let addr = wild_address(rng);
                // SAFETY: a load from a device or memory outside this domain's
                // RAM: emulated, or answered with an abort stepped over.
                let _ = unsafe { core::ptr::read_volatile(addr as *const u64) };
            }
            _ => {
                let addr = wild_address(rng);
                // SAFETY: a store outside this domain's RAM (never into its
                // own memory): emulated, or answered with an abort.
                unsafe { core::ptr::write_volatile(addr as *mut u32, b as u32) };
            }
        }
    }

    #[no_mangle]
    extern "C" fn guest_main() -> ! {
        let mut rng = Rng(virtual_count() | 1);
        println!("hostile: up; {} attacks, then a reset", ROUND);
        for _ in 0..ROUND {
            attack(&mut rng);
        }
        println!("hostile: round done, {} exceptions stepped over; resetting", EXCEPTIONS.load(Ordering::Relaxed));
        hvc_call(psci::SYSTEM_RESET, 0, 0, 0);
        loop {
            wait_for_interrupt();
        }
    }

    #[no_mangle]
    fn on_irq(_intid: u32) {}

    #[no_mangle]
    fn on_sync(frame: &mut TrapFrame, _esr: u64, _far: u64) {
        // Whatever it was (an undefined instruction, an abort), carry on
        // with the next attack.
        EXCEPTIONS.fetch_add(1, Ordering::Relaxed);
        frame.elr = frame.elr.wrapping_add(4);
    }
}

#[cfg(not(target_os = "none"))]
fn main() {}
