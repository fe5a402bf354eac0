//! A minimal runtime for the hypervisor's test guests: EL1 entry and
//! vectors, console output on the domain's virtual PL011, the GICv3 and
//! virtual-timer set-up a guest needs, and SMCCC calls.
//!
//! A guest binary defines `guest_main`, `on_irq` and `on_sync`; everything
//! here talks to the virtual hardware exactly as an OS would, so the guests
//! test the hypervisor's emulation, not a shortcut around it.
#![cfg_attr(target_os = "none", no_std)]

#[cfg(target_os = "none")]
pub mod rt;

#[cfg(target_os = "none")]
pub use rt::*;

#[cfg(target_os = "none")]
extern crate alloc;

/// Xen's guest ABI for PV frontends (guests that call [`heap_init`]).
#[cfg(target_os = "none")]
pub mod xen;

#[cfg(target_os = "none")]
#[global_allocator]
static HEAP: linked_list_allocator::LockedHeap = linked_list_allocator::LockedHeap::empty();

/// Gives the allocator its memory; guests that never call this allocate
/// nothing (an allocation would fail).
#[cfg(target_os = "none")]
pub fn heap_init(space: &'static mut [u8]) {
    // SAFETY: the slice is exclusively the heap's from now on ('static and
    // mutably borrowed for good).
    unsafe { HEAP.lock().init(space.as_mut_ptr(), space.len()) }
}
