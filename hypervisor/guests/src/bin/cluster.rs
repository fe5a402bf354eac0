//! The instrument cluster, as a car's small RTOS would be: a no_std guest
//! that finds Xen's ABI in its device tree and drives vdispl device 0 with
//! two connectors: 0, the speedometer (`cockpit-gauges`, the same drawing
//! as the compositor's simulator), and 1, the telltale overlay. It flips
//! both every frame period, drawing the next picture while the compositor
//! shows the last, and prints a line every `REPORT` frames shown. When the backend (the
//! compositor) goes away it closes, connects to the next one and draws on.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod guest {
    use alloc::vec::Vec;

    use cockpit_gauges::{speed_at, telltales, Pixels, Speedometer};
    use hv_test_guests::xen::{Discovery, Xen, WAKE_PPIS};
    use hv_test_guests::*;
    use pv_transport::xenbus::XenbusState;
    use pv_transport::{Endpoint, RingMemory};
    use vdispl_front::{SetConfig, VdisplFront};

    const HEAP_SIZE: usize = 12 << 20;
    static mut HEAP_SPACE: [u8; HEAP_SIZE] = [0; HEAP_SIZE];
    /// DRM_FORMAT_XRGB8888 and DRM_FORMAT_ARGB8888.
    const XRGB8888: u32 = u32::from_le_bytes(*b"XR24");
    const ARGB8888: u32 = u32::from_le_bytes(*b"AR24");
    const TIMEOUT_MS: u32 = 30_000;
    /// 30 frames per second.
    const PERIOD_MS: u64 = 33;
    /// A progress line every this many frames.
    const REPORT: u64 = 30;

    fn fail(what: &dyn core::fmt::Display) -> ! {
        println!("cluster: FAILED: {what}");
        loop {
            wait_for_interrupt();
        }
    }

    fn now_ms() -> u64 {
        virtual_count() / (counter_freq() / 1000).max(1)
    }

    #[no_mangle]
    extern "C" fn guest_main(dtb: u64) -> ! {
        mmu_on();
        // SAFETY: the heap's space is used by nothing else, ever.
        heap_init(unsafe { &mut *core::ptr::addr_of_mut!(HEAP_SPACE) });
        gic_init(WAKE_PPIS);
        // SAFETY: x0 at entry, untouched since.
        let found = unsafe { Discovery::from_boot_dtb(dtb) }.unwrap_or_else(|e| fail(&e));
        let xen = Xen::init(found).unwrap_or_else(|e| fail(&e));
        let mut frames = 0u64;
        loop {
            let ep = xen.endpoint().unwrap_or_else(|e| fail(&e));
            if let Err(e) = session(ep, &mut frames) {
                // The compositor restarting refuses or drops us for a
                // while: try again, for as long as it takes.
                println!("cluster: display session ended: {e}; connecting again");
                sleep_ms(500);
            }
        }
    }

    /// One connector's double buffer.
    struct Screen {
        w: u32,
        h: u32,
        fbs: [u64; 2],
        dbufs: [u64; 2],
        px: Vec<u32>,
    }

    impl Screen {
        fn new(d: &mut VdisplFront, w: u32, h: u32, format: u32) -> Result<Self, vdispl_front::Error> {
            let mut s = Screen { w, h, fbs: [0; 2], dbufs: [0; 2], px: alloc::vec![0; w as usize * h as usize] };
            for i in 0..2 {
                s.dbufs[i] = d.create_dbuf(w, h, 32)?;
                s.fbs[i] = d.attach_fb(s.dbufs[i], w, h, format)?;
            }
            Ok(s)
        }

        fn pixels(&mut self) -> Pixels<'_> {
            Pixels::new(&mut self.px, self.w, self.h).unwrap_or_else(|| fail(&"a buffer of the wrong size"))
        }

        /// Puts the picture into buffer `slot` and shows it on `conn`.
        fn show(&self, d: &mut VdisplFront, conn: usize, slot: usize, first: bool) -> Result<(), vdispl_front::Error> {
            let buf = d.dbuf(self.dbufs[slot]).ok_or(vdispl_front::Error::Unknown)?;
            let row = self.w as usize * 4;
            let bytes: &[u8] = bytemuck::cast_slice(&self.px);
            let pitch = buf.pitch as usize;
            if pitch == row {
                buf.memory().write_bytes(0, bytes);
            } else {
                for (y, line) in bytes.chunks_exact(row).enumerate() {
                    buf.memory().write_bytes(y * pitch, line);
                }
            }
            if first {
                let cfg = SetConfig { fb_cookie: self.fbs[slot], x: 0, y: 0, width: self.w, height: self.h, bpp: 32 };
                d.set_config(conn, cfg)
            } else {
                d.page_flip(conn, self.fbs[slot])
            }
        }
    }

    fn session(ep: Endpoint, frames: &mut u64) -> Result<(), vdispl_front::Error> {
        println!("cluster: domain {}, connecting vdispl 0", ep.domid);
        let mut d = VdisplFront::connect(ep, 0, TIMEOUT_MS)?;
        d.timeout_ms = TIMEOUT_MS;
        let conns: Vec<_> = d.connectors().cloned().collect();
        let [gauges, lamps] = conns.as_slice() else {
            println!("cluster: vdispl 0 has {} connectors; it needs gauges and telltales", conns.len());
            return Err(vdispl_front::Error::Unknown);
        };
        println!("cluster: connected; gauges {}x{}, telltales {}x{}", gauges.width, gauges.height, lamps.width, lamps.height);
        let gauge = Speedometer::new(gauges.width, gauges.height, "CLUSTER (NO_STD GUEST)");
        let mut g = Screen::new(&mut d, gauges.width, gauges.height, XRGB8888)?;
        let mut t = Screen::new(&mut d, lamps.width, lamps.height, ARGB8888)?;
        let start = now_ms();
        let mut next = start;
        let mut last_report = start;
        // Pipelined: the next picture is drawn while the compositor shows
        // the last one; a buffer is written only once the flip after it
        // is done (so it is no longer on screen).
        let mut pending: Option<usize> = None;
        // Where the time goes, per report: drawing, waiting for the
        // compositor, copying into the shared buffers.
        let mut spent = [0u64; 3];
        for k in 0u64.. {
            let (slot, first) = ((k % 2) as usize, k == 0);
            let ms = now_ms();
            gauge.draw(&mut g.pixels(), speed_at(ms));
            telltales(&mut t.pixels(), ms);
            let drawn = now_ms();
            let shown = match pending.take() {
                Some(p) => {
                    d.wait_flip_done(0, g.fbs[p], TIMEOUT_MS)?;
                    d.wait_flip_done(1, t.fbs[p], TIMEOUT_MS)?;
                    true
                }
                None => false,
            };
            let waited = now_ms();
            g.show(&mut d, 0, slot, first)?;
            t.show(&mut d, 1, slot, first)?;
            let copied = now_ms();
            spent[0] += drawn - ms;
            spent[1] += waited - drawn;
            spent[2] += copied - waited;
            if first {
                *frames += 1;
            } else {
                pending = Some(slot);
            }
            if shown {
                *frames += 1;
                if *frames % REPORT == 0 {
                    let now = now_ms();
                    let secs = (now - last_report) as f32 / 1000.0;
                    last_report = now;
                    let [draw, wait, copy] = core::mem::take(&mut spent).map(|t| t / REPORT);
                    println!(
                        "cluster: frame {} shown ({:.1} fps over the last {REPORT}; per frame {draw} ms drawing, {wait} ms waiting for the compositor, {copy} ms handing over)",
                        *frames,
                        REPORT as f32 / secs.max(0.001)
                    );
                    if d.backend_state() != XenbusState::Connected {
                        println!("cluster: the display backend left ({:?}); closing", d.backend_state());
                        return d.disconnect(TIMEOUT_MS).map(drop);
                    }
                }
            }
            next += PERIOD_MS;
            let now = now_ms();
            if now < next {
                sleep_ms(next - now);
            } else if now - next > PERIOD_MS {
                // Far behind (a stall): start the beat again from now. A
                // frame a little late is caught up by the next one.
                next = now;
            }
        }
        Ok(())
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
