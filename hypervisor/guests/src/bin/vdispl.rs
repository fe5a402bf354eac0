//! A small RTOS-like display client: a no_std guest that finds Xen's ABI
//! in its device tree, connects vdispl device 0 through the store, and
//! draws `FRAMES` numbered test frames on connector 0, double-buffered:
//! the first by SET_CONFIG, the rest by page flips, each waited for until
//! the backend reports it shown. When the backend goes away it closes,
//! connects to the next one and draws the next `FRAMES`. The test compares
//! every frame the backend's sink received with [`pixel`], recomputed on
//! the host.
#![cfg_attr(target_os = "none", no_std, no_main)]

/// Frames drawn.
#[cfg(target_os = "none")]
const FRAMES: u32 = 4;

/// Pixel (x, y) of frame `k` as XRGB8888 (0x00RRGGBB): every channel
/// moves from one frame to the next, so a stale frame never passes.
/// (xtask's interop check has its own copy.)
#[cfg(target_os = "none")]
fn pixel(x: u32, y: u32, k: u32) -> u32 {
    let r = (x * 7 + k * 31) & 0xff;
    let g = (y * 5 + k * 17) & 0xff;
    let b = ((x ^ y) + k * 61) & 0xff;
    r << 16 | g << 8 | b
}

#[cfg(target_os = "none")]
mod guest {
    use super::{pixel, FRAMES};
    use hv_test_guests::xen::{Discovery, Xen, WAKE_PPIS};
    use hv_test_guests::*;
    use pv_transport::xenbus::XenbusState;
    use pv_transport::{Endpoint, RingMemory};
    use vdispl_front::{SetConfig, VdisplFront};

    const HEAP_SIZE: usize = 8 << 20;
    static mut HEAP_SPACE: [u8; HEAP_SIZE] = [0; HEAP_SIZE];
    /// DRM_FORMAT_XRGB8888.
    const XRGB8888: u32 = u32::from_le_bytes(*b"XR24");
    const TIMEOUT_MS: u32 = 30_000;

    fn fail(what: &dyn core::fmt::Display) -> ! {
        println!("panel: FAILED: {what}");
        loop {
            wait_for_interrupt();
        }
    }

    #[no_mangle]
    extern "C" fn guest_main(dtb: u64) -> ! {
        mmu_on();
        // SAFETY: the heap's space is used by nothing else, ever.
        heap_init(unsafe { &mut *core::ptr::addr_of_mut!(HEAP_SPACE) });
        gic_init(WAKE_PPIS);
        // SAFETY: x0 at entry, untouched since.
        let found = unsafe { Discovery::from_boot_dtb(dtb) }.unwrap_or_else(|e| fail(&e));
        println!("panel: Xen ABI found, grant window at {:#x}", found.grant_base);
        let xen = Xen::init(found).unwrap_or_else(|e| fail(&e));
        // One session per backend: when the backend goes away (pv-backendd
        // restarted), close, connect to its successor and draw on, with
        // the frame numbers carrying on. A connection the backend refuses
        // (it may still be starting over) is tried again.
        let mut first = 1;
        let mut refused = 0;
        loop {
            let ep = xen.endpoint().unwrap_or_else(|e| fail(&e));
            println!("panel: domain {}, connecting vdispl 0", ep.domid);
            match session(ep, first) {
                Ok(()) => {
                    first += FRAMES;
                    refused = 0;
                }
                Err(e) if refused < 20 => {
                    refused += 1;
                    println!("panel: session ended: {e}; trying again");
                    sleep_ms(500);
                }
                Err(e) => fail(&e),
            }
        }
    }

    fn session(ep: Endpoint, first: u32) -> Result<(), vdispl_front::Error> {
        let mut d = VdisplFront::connect(ep, 0, TIMEOUT_MS)?;
        d.timeout_ms = TIMEOUT_MS;
        let c = d.connectors().next().cloned().ok_or(vdispl_front::Error::Unknown)?;
        let (w, h) = (c.width, c.height);
        println!("panel: connected; connector 0 \"{}\" {}x{}", c.unique_id, w, h);
        let mut fbs = [0u64; 2];
        let mut dbufs = [0u64; 2];
        for i in 0..2 {
            dbufs[i] = d.create_dbuf(w, h, 32)?;
            fbs[i] = d.attach_fb(dbufs[i], w, h, XRGB8888)?;
        }
        let mut row = alloc::vec![0u8; w as usize * 4];
        for k in first..first + FRAMES {
            let slot = (k % 2) as usize;
            let buf = d.dbuf(dbufs[slot]).ok_or(vdispl_front::Error::Unknown)?;
            let pitch = buf.pitch as usize;
            for y in 0..h {
                for (x, px) in row.chunks_exact_mut(4).enumerate() {
                    px.copy_from_slice(&pixel(x as u32, y, k).to_le_bytes());
                }
                buf.memory().write_bytes(y as usize * pitch, &row);
            }
            if k == first {
                let cfg = SetConfig { fb_cookie: fbs[slot], x: 0, y: 0, width: w, height: h, bpp: 32 };
                d.set_config(0, cfg)?;
            } else {
                d.page_flip(0, fbs[slot])?;
                d.wait_flip_done(0, fbs[slot], TIMEOUT_MS)?;
            }
            println!("panel: frame {k} shown");
        }
        println!("panel: done, {FRAMES} frames");
        while d.backend_state() == XenbusState::Connected {
            sleep_ms(200);
        }
        println!("panel: backend left ({:?}); closing", d.backend_state());
        d.disconnect(TIMEOUT_MS).map(drop)
    }

    #[no_mangle]
    fn on_irq(_intid: u32) {}

    #[no_mangle]
    fn on_sync(_frame: &mut TrapFrame, esr: u64, far: u64) {
        fail(&format_args!("exception class {:#x} at {far:#x}", esr_class(esr)));
    }

    extern crate alloc;
}

#[cfg(not(target_os = "none"))]
fn main() {}
