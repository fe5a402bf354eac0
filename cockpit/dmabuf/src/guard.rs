//! Faults in dma-bufs read directly, survived.
//!
//! The kernel will not read raw-page-frame mappings for us, so those are
//! copied with plain loads. Some of their exporters fault pages in lazily
//! and can fail a fault (a GPU wedged or out of mappable memory, a buffer
//! evicted), which raises SIGBUS (or SIGSEGV) in the compositor. A client
//! could arrange that on purpose. So every directly read mapping is
//! registered here, and a fault inside one is answered by mapping a page
//! of zeros over the faulting page: the load is retried and reads zeros,
//! the mapping is marked faulted, and the copy reports failure. A fault
//! anywhere else goes to the handler that was there before (Rust's stack
//! overflow report, or the default action).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::OnceLock;

/// Directly read mappings at once: the Wayland quotas keep the mappings
/// of all clients below this (a compile-time check there).
pub(crate) const SLOTS: usize = 2048;

struct Slot {
    start: AtomicUsize,
    end: AtomicUsize,
    faulted: AtomicBool,
}

#[allow(clippy::declare_interior_mutable_const)]
const FREE: Slot = Slot {
    start: AtomicUsize::new(0),
    end: AtomicUsize::new(0),
    faulted: AtomicBool::new(false),
};
static TABLE: [Slot; SLOTS] = [FREE; SLOTS];
static PAGE: AtomicUsize = AtomicUsize::new(4096);
/// si_code of a SIGSEGV at an address with no mapping behind it
/// (include/uapi/asm-generic/siginfo.h), as an exporter's failed fault is.
const SEGV_MAPERR: libc::c_int = 1;

/// The actions for SIGBUS and SIGSEGV before ours.
struct Previous {
    bus: libc::sigaction,
    segv: libc::sigaction,
}
// SAFETY: plain data (handler addresses, flags, masks), written once before
// it is shared and only read afterwards.
unsafe impl Sync for Previous {}
// SAFETY: as for Sync.
unsafe impl Send for Previous {}

static PREVIOUS: OnceLock<Result<Previous, i32>> = OnceLock::new();

/// A mapping registered for fault recovery, until dropped.
pub(crate) struct Guarded {
    slot: usize,
}

impl Guarded {
    /// Registers `[start, start + len)`; `None` if the handlers could not
    /// be installed or every slot is taken.
    pub(crate) fn register(start: usize, len: usize) -> Option<Guarded> {
        PREVIOUS.get_or_init(install).as_ref().ok()?;
        let end = start.checked_add(len)?;
        for (i, s) in TABLE.iter().enumerate() {
            // `end` is written before `start` makes the slot live.
            if s.start.load(Ordering::Acquire) == 0
                && s.end
                    .compare_exchange(0, end, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
            {
                s.faulted.store(false, Ordering::Release);
                s.start.store(start, Ordering::Release);
                return Some(Guarded { slot: i });
            }
        }
        None
    }

    /// Whether a page of this mapping failed and reads as zeros now.
    pub(crate) fn faulted(&self) -> bool {
        TABLE[self.slot].faulted.load(Ordering::Acquire)
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        let s = &TABLE[self.slot];
        s.start.store(0, Ordering::Release);
        s.end.store(0, Ordering::Release);
    }
}

fn install() -> Result<Previous, i32> {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if page > 0 {
        PAGE.store(page as usize, Ordering::Relaxed);
    }
    let mut prev = Previous {
        bus: zeroed_action(),
        segv: zeroed_action(),
    };
    let mut ours = zeroed_action();
    ours.sa_sigaction = on_fault as *const () as usize;
    // SA_ONSTACK: a thread's alternate stack, where Rust set one up.
    ours.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
    for (sig, old) in [
        (libc::SIGBUS, &mut prev.bus),
        (libc::SIGSEGV, &mut prev.segv),
    ] {
        // SAFETY: `ours` and `old` are valid sigaction values owned here;
        // the handler only touches atomics and async-signal-safe calls.
        if unsafe { libc::sigaction(sig, &ours, old) } != 0 {
            return Err(sig);
        }
    }
    Ok(prev)
}

fn zeroed_action() -> libc::sigaction {
    // SAFETY: sigaction is plain data; all zeros is SIG_DFL with no flags
    // and an empty mask.
    unsafe { std::mem::zeroed() }
}

extern "C" fn on_fault(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers;
    // for SIGBUS and SIGSEGV its address field is the faulting address.
    let (addr, code) = unsafe { ((*info).si_addr() as usize, (*info).si_code) };
    // Ours: a fault the kernel raised on a read (the copies only read).
    // A permission fault (SEGV_ACCERR: a write into a read-only mapping, a
    // compositor bug) or a signal someone sent is not, and would loop.
    let ours = code > 0 && (sig == libc::SIGBUS || code == SEGV_MAPERR);
    if !ours {
        return pass_on(sig, info, ctx);
    }
    let page = PAGE.load(Ordering::Relaxed);
    for s in TABLE.iter() {
        let start = s.start.load(Ordering::Acquire);
        if start != 0 && addr >= start && addr < s.end.load(Ordering::Acquire) {
            let at = addr & !(page - 1);
            // SAFETY: replaces one page inside a registered mapping (alive:
            // it is being read, and unregistered before it is unmapped)
            // with anonymous zeros; nothing else lives at that address.
            let got = unsafe {
                libc::mmap(
                    at as *mut libc::c_void,
                    page,
                    libc::PROT_READ,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                    -1,
                    0,
                )
            };
            if got != libc::MAP_FAILED {
                s.faulted.store(true, Ordering::Release);
                return;
            }
        }
    }
    pass_on(sig, info, ctx);
}

/// A handler installed with SA_SIGINFO.
type InfoHandler = extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void);

/// A fault that is not ours: what was installed before, or the default
/// action (the return re-runs the faulting load, which then takes it).
fn pass_on(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let prev = match PREVIOUS.get() {
        Some(Ok(p)) => Some(if sig == libc::SIGBUS { &p.bus } else { &p.segv }),
        _ => None,
    };
    match prev {
        Some(p) if p.sa_sigaction != libc::SIG_DFL && p.sa_sigaction != libc::SIG_IGN => {
            if p.sa_flags & libc::SA_SIGINFO != 0 {
                // SAFETY: the previous handler was installed with SA_SIGINFO,
                // so it has this signature; it gets our arguments unchanged.
                let f: InfoHandler = unsafe { std::mem::transmute(p.sa_sigaction) };
                f(sig, info, ctx);
            } else {
                // SAFETY: as above, for a handler without SA_SIGINFO.
                let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(p.sa_sigaction) };
                f(sig);
            }
        }
        _ => {
            let dfl = zeroed_action();
            // SAFETY: restores the default action; async-signal-safe.
            unsafe { libc::sigaction(sig, &dfl, std::ptr::null_mut()) };
        }
    }
}
