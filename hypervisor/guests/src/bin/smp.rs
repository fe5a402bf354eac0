//! Two vCPUs of one domain talking through SGIs. vCPU 0 starts vCPU 1 with
//! PSCI CPU_ON; they play ten rounds of SGI ping-pong; vCPU 1 switches itself
//! off with CPU_OFF; vCPU 0 reports what AFFINITY_INFO says at each step.
//! Then the roles swap: vCPU 0 starts vCPU 1 again and switches itself off,
//! and vCPU 1 starts vCPU 0, which must find CPU_ON's context in its first
//! argument register (not the registers a kernel image boots with).
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod guest {
    use core::sync::atomic::{AtomicU64, Ordering};
    use hv_test_guests::*;
    use xen_abi::psci;

    const PING: u32 = 1; // vCPU 1 -> vCPU 0
    const PONG: u32 = 2; // vCPU 0 -> vCPU 1
    const ROUNDS: u64 = 10;

    #[repr(C, align(16))]
    struct Stack([u8; 16384]);
    static mut STACK1: Stack = Stack([0; 16384]);
    /// vCPU 0's stack once vCPU 1 has switched it back on.
    static mut STACK0: Stack = Stack([0; 16384]);
    /// 0: ping-pong; 1: the swap (vCPU 1 switches vCPU 0 back on).
    static PHASE: AtomicU64 = AtomicU64::new(0);
    static PONGS: AtomicU64 = AtomicU64::new(0);
    static PINGS: AtomicU64 = AtomicU64::new(0);

    #[cfg(target_arch = "aarch64")]
    core::arch::global_asm!(
        r#"
.global smp_secondary_entry
smp_secondary_entry:
    mov     sp, x0
    adrp    x1, guest_vectors
    add     x1, x1, :lo12:guest_vectors
    msr     vbar_el1, x1
    isb
    bl      smp_secondary_main
1:  wfi
    b       1b
"#
    );

    #[cfg(target_arch = "arm")]
    core::arch::global_asm!(
        r#"
.arm
.global smp_secondary_entry
smp_secondary_entry:
    mov     sp, r0
    ldr     r1, =guest_vectors
    mcr     p15, 0, r1, c12, c0, 0  // VBAR
    isb
    bl      smp_secondary_main
1:  wfi
    b       1b
"#
    );

    extern "C" {
        fn smp_secondary_entry();
    }

    fn affinity(v: u64) -> i64 {
        hvc_call(AFFINITY_INFO, v, 0, 0)
    }

    #[no_mangle]
    extern "C" fn guest_main() {
        println!("smp: vCPU 0 up; vCPU 1 affinity {}", affinity(1));
        gic_init(1 << PING);
        // Pings wait (pending) until IRQs are on, so vCPU 1 is surely still
        // on when CPU_ON is asked again.
        let entry = smp_secondary_entry as *const () as u64;
        let stack_top = core::ptr::addr_of_mut!(STACK1) as u64 + 16384;
        let first = hvc_call(CPU_ON, 1, entry, stack_top);
        let again = hvc_call(CPU_ON, 1, entry, stack_top);
        let missing = hvc_call(CPU_ON, 7, entry, stack_top);
        println!("smp: CPU_ON(1) returned {}", first);
        println!("smp: CPU_ON(1) again returned {}", again);
        println!("smp: CPU_ON(7) returned {}", missing);
        irqs_on();
        // Poll: once vCPU 1 is off, no interrupt would wake a WFI here.
        while PONGS.load(Ordering::Acquire) < ROUNDS || affinity(1) != psci::AFFINITY_OFF {
            core::hint::spin_loop();
        }
        println!("smp: {} SGI round trips; vCPU 1 affinity {}", PONGS.load(Ordering::Acquire), affinity(1));
        PHASE.store(1, Ordering::Release);
        println!("smp: CPU_ON(1) for the swap returned {}", hvc_call(CPU_ON, 1, entry, stack_top));
        println!("smp: vCPU 0 switching off");
        hvc_call(psci::CPU_OFF, 0, 0, 0);
        println!("smp: CPU_OFF returned (should not happen)");
    }

    fn stack0_top() -> u64 {
        core::ptr::addr_of_mut!(STACK0) as u64 + 16384
    }

    /// Where a started vCPU lands, `context` in its first argument register
    /// (and its stack pointer).
    #[no_mangle]
    extern "C" fn smp_secondary_main(context: usize) {
        match (mpidr_index(), PHASE.load(Ordering::Acquire)) {
            (0, _) => vcpu0_back(context as u64),
            (_, 1) => swap(),
            _ => ping_pong(),
        }
    }

    fn swap() {
        while affinity(0) != psci::AFFINITY_OFF {
            core::hint::spin_loop();
        }
        let entry = smp_secondary_entry as *const () as u64;
        println!("smp: vCPU 1 turning vCPU 0 back on: {}", hvc_call(CPU_ON, 0, entry, stack0_top()));
        loop {
            wait_for_interrupt();
        }
    }

    fn vcpu0_back(context: u64) {
        let ok = if context == stack0_top() { "as CPU_ON gave it" } else { "WRONG" };
        println!("smp: vCPU 0 back on, context {}", ok);
        loop {
            wait_for_interrupt();
        }
    }

    fn ping_pong() {
        println!("smp: vCPU {} up", mpidr_index());
        gic_init(1 << PONG);
        irqs_on();
        PINGS.store(1, Ordering::Release);
        send_sgi(PING, 1 << 0);
        while PINGS.load(Ordering::Acquire) <= ROUNDS {
            wait_for_interrupt();
        }
        println!("smp: vCPU 1 switching off");
        hvc_call(psci::CPU_OFF, 0, 0, 0);
        println!("smp: CPU_OFF returned (should not happen)");
    }

    #[no_mangle]
    fn on_irq(intid: u32) {
        match (mpidr_index(), intid) {
            (0, PING) => {
                let n = PONGS.fetch_add(1, Ordering::AcqRel) + 1;
                println!("pong {}", n);
                send_sgi(PONG, 1 << 1);
            }
            (1, PONG) => {
                let n = PINGS.fetch_add(1, Ordering::AcqRel) + 1;
                if n <= ROUNDS {
                    send_sgi(PING, 1 << 0);
                }
            }
            (v, i) => println!("smp: vCPU {} got unexpected interrupt {}", v, i),
        }
    }

    #[no_mangle]
    fn on_sync(frame: &mut TrapFrame, esr: u64, _far: u64) {
        println!("smp: unexpected exception ESR {:#x} at {:#x}", esr, frame.elr);
        power_off();
    }
}

#[cfg(not(target_os = "none"))]
fn main() {}
