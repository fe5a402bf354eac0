//! The device tree a Linux domain boots with: its memory, vCPUs (started
//! with PSCI over HVC), the virtual GIC (v3 or v2, as the board's), the architected timer, its
//! virtual PL011 (an SBSA UART, as Xen presents it) and its passthrough
//! devices, all at the guest addresses of `xen_abi::guest_layout`.
//!
//! Static partitions never change at run time, so the tree is written here
//! at build time (with rust-vmm's `vm-fdt`) and the hypervisor only places it
//! in the domain's RAM and passes its address in x0.

use vm_fdt::{Error, FdtWriter};
use xen_abi::guest_layout as gl;

use crate::sample::PassthroughDev;

const GIC_PHANDLE: u32 = 1;
/// GIC interrupt specifier: type (0 SPI, 1 PPI), number, flags.
const SPI: u32 = 0;
const PPI: u32 = 1;
const LEVEL_HIGH: u32 = 4;
/// Level-low on every CPU: how Xen describes the timer PPIs.
const PPI_ALL_CPUS_LEVEL_LOW: u32 = 0xf08;

pub struct GuestDt<'a> {
    pub name: &'a str,
    pub vcpus: u8,
    pub mem_size: u64,
    /// Guest physical base of its RAM.
    pub ram_ipa: u64,
    pub bootargs: &'a str,
    /// Guest physical range of the initrd, if any.
    pub initrd: Option<(u64, u64)>,
    pub passthrough: &'a [PassthroughDev],
    /// Xen's guest ABI: where its pages are (left out of `memory`).
    pub xen: Option<hv_core::bundle::XenPages>,
    /// The board's GIC is a GICv2: so is the guest's.
    pub gic_v2: bool,
    /// A 32-bit (Armv7-A) board: its vCPUs are Cortex-A15s with the
    /// Armv7 generic timer.
    pub a32: bool,
}

fn reg(fdt: &mut FdtWriter, ranges: &[(u64, u64)]) -> Result<(), Error> {
    let cells: Vec<u64> = ranges.iter().flat_map(|&(a, s)| [a, s]).collect();
    fdt.property_array_u64("reg", &cells)
}

impl GuestDt<'_> {
    pub fn build(&self) -> Result<Vec<u8>, Error> {
        let mut fdt = FdtWriter::new()?;
        let root = fdt.begin_node("")?;
        fdt.property_string("compatible", "cockpit,virt")?;
        fdt.property_string("model", &format!("cockpit domain {}", self.name))?;
        fdt.property_u32("#address-cells", 2)?;
        fdt.property_u32("#size-cells", 2)?;
        fdt.property_u32("interrupt-parent", GIC_PHANDLE)?;

        let chosen = fdt.begin_node("chosen")?;
        fdt.property_string("bootargs", self.bootargs)?;
        fdt.property_string("stdout-path", &format!("/serial@{:x}", gl::PL011_BASE))?;
        if let Some((start, end)) = self.initrd {
            fdt.property_u64("linux,initrd-start", start)?;
            fdt.property_u64("linux,initrd-end", end)?;
        }
        fdt.end_node(chosen)?;

        let mem = fdt.begin_node(&format!("memory@{:x}", self.ram_ipa))?;
        fdt.property_string("device_type", "memory")?;
        let xen_size = self.xen.map_or(0, |x| x.size);
        reg(&mut fdt, &[(self.ram_ipa, self.mem_size - xen_size)])?;
        fdt.end_node(mem)?;

        if let Some(x) = self.xen {
            // Xen's guest binding: the version string first (Linux checks
            // it), the grant-table window, and the event upcall PPI.
            let hyp = fdt.begin_node("hypervisor")?;
            fdt.property_string_list("compatible", vec!["xen,xen-4.17".into(), "xen,xen".into()])?;
            reg(&mut fdt, &[(x.grant_ipa, u64::from(x.grant_frames) * 4096)])?;
            fdt.property_array_u32("interrupts", &[PPI, gl::EVTCHN_PPI - 16, PPI_ALL_CPUS_LEVEL_LOW])?;
            fdt.end_node(hyp)?;
        }

        let cpus = fdt.begin_node("cpus")?;
        fdt.property_u32("#address-cells", 1)?;
        fdt.property_u32("#size-cells", 0)?;
        for i in 0..self.vcpus as u32 {
            let cpu = fdt.begin_node(&format!("cpu@{i}"))?;
            fdt.property_string("device_type", "cpu")?;
            fdt.property_string("compatible", if self.a32 { "arm,cortex-a15" } else { "arm,armv8" })?;
            fdt.property_u32("reg", i)?;
            fdt.property_string("enable-method", "psci")?;
            fdt.end_node(cpu)?;
        }
        fdt.end_node(cpus)?;

        let psci = fdt.begin_node("psci")?;
        fdt.property_string_list("compatible", vec!["arm,psci-1.0".into(), "arm,psci-0.2".into()])?;
        fdt.property_string("method", "hvc")?;
        fdt.end_node(psci)?;

        let gic = fdt.begin_node(&format!("interrupt-controller@{:x}", gl::GICD_BASE))?;
        if self.gic_v2 {
            fdt.property_string("compatible", "arm,cortex-a15-gic")?;
            reg(&mut fdt, &[(gl::GICD_BASE, gl::GICD_V2_SIZE), (gl::GICC_BASE, gl::GICC_SIZE)])?;
        } else {
            fdt.property_string("compatible", "arm,gic-v3")?;
            fdt.property_u32("#redistributor-regions", 1)?;
            reg(&mut fdt, &[(gl::GICD_BASE, gl::GICD_SIZE), (gl::GICR_BASE, self.vcpus as u64 * gl::GICR_STRIDE)])?;
        }
        fdt.property_u32("#interrupt-cells", 3)?;
        fdt.property_null("interrupt-controller")?;
        fdt.property_phandle(GIC_PHANDLE)?;
        fdt.end_node(gic)?;

        let timer = fdt.begin_node("timer")?;
        fdt.property_string("compatible", if self.a32 { "arm,armv7-timer" } else { "arm,armv8-timer" })?;
        // Secure physical, non-secure physical, virtual, hypervisor (PPI numbers).
        let ppis = [13, 14, gl::VTIMER_PPI - 16, 10];
        let cells: Vec<u32> = ppis.iter().flat_map(|&n| [PPI, n, PPI_ALL_CPUS_LEVEL_LOW]).collect();
        fdt.property_array_u32("interrupts", &cells)?;
        fdt.property_null("always-on")?;
        fdt.end_node(timer)?;

        let uart = fdt.begin_node(&format!("serial@{:x}", gl::PL011_BASE))?;
        fdt.property_string("compatible", "arm,sbsa-uart")?;
        reg(&mut fdt, &[(gl::PL011_BASE, gl::PL011_SIZE)])?;
        fdt.property_array_u32("interrupts", &[SPI, gl::PL011_SPI - 32, LEVEL_HIGH])?;
        fdt.property_u32("current-speed", 115200)?;
        fdt.end_node(uart)?;

        for p in self.passthrough {
            let dev = fdt.begin_node(&format!("passthrough@{:x}", p.reg.base))?;
            fdt.property_string("compatible", &p.compatible)?;
            reg(&mut fdt, &[(p.reg.base, p.reg.size)])?;
            if let Some(irq) = p.irq {
                fdt.property_array_u32("interrupts", &[SPI, irq - 32, LEVEL_HIGH])?;
            }
            fdt.property_null("dma-coherent")?;
            fdt.end_node(dev)?;
        }

        fdt.end_node(root)?;
        fdt.finish()
    }
}

/// The fields of an arm64 Linux `Image` header a loader needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageHeader {
    /// Offset from a 2 MiB-aligned base where the image must be placed.
    pub text_offset: u64,
    /// Memory the kernel occupies from its start, bss included.
    pub image_size: u64,
}

/// Where a zImage goes in a 32-bit domain's RAM: above 32 MiB, as Linux's
/// Documentation/arch/arm/booting.rst advises, so its decompressor need not
/// move itself out of the way of the kernel it unpacks at the RAM base.
pub const ZIMAGE_OFFSET: u64 = 32 << 20;
/// Room past a zImage its decompressor uses (stack, heap, page tables).
const ZIMAGE_SLACK: u64 = 1 << 20;

/// Reads an Armv7 zImage's header (magic 0x016F2818 at 0x24, then its
/// start and end addresses): where it goes, and what it takes from there.
pub fn zimage_header(image: &[u8]) -> Option<ImageHeader> {
    let u = |o: usize| -> Option<u64> { Some(u32::from_le_bytes(image.get(o..o + 4)?.try_into().ok()?).into()) };
    let (magic, start, end) = (u(0x24)?, u(0x28)?, u(0x2c)?);
    if magic != 0x016F_2818 || end <= start {
        return None;
    }
    Some(ImageHeader { text_offset: ZIMAGE_OFFSET, image_size: end - start + ZIMAGE_SLACK })
}

/// The kernel header of a board of `arch`'s kernels.
pub fn kernel_header(arch: &str, image: &[u8]) -> Option<ImageHeader> {
    if arch == "armv7a" {
        zimage_header(image)
    } else {
        image_header(image)
    }
}

/// Reads the arm64 boot header ("ARM\x64" at offset 56).
pub fn image_header(image: &[u8]) -> Option<ImageHeader> {
    if image.len() < 64 || &image[56..60] != b"ARM\x64" {
        return None;
    }
    let u = |o: usize| u64::from_le_bytes(image[o..o + 8].try_into().expect("8 bytes"));
    let (text_offset, image_size) = (u(8), u(16));
    // image_size 0: a pre-3.17 kernel with the historical text offset.
    Some(if image_size == 0 {
        ImageHeader { text_offset: 0x8_0000, image_size: image.len() as u64 }
    } else {
        ImageHeader { text_offset, image_size }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Region;

    #[test]
    fn reads_the_arm64_image_header() {
        let mut img = vec![0u8; 128];
        img[8..16].copy_from_slice(&0u64.to_le_bytes());
        img[16..24].copy_from_slice(&0x201_0000u64.to_le_bytes());
        img[56..60].copy_from_slice(b"ARM\x64");
        assert_eq!(image_header(&img), Some(ImageHeader { text_offset: 0, image_size: 0x201_0000 }));
        img[56] = 0;
        assert_eq!(image_header(&img), None);
        assert_eq!(image_header(&[0; 10]), None);
    }

    #[test]
    fn device_tree_parses_and_names_what_linux_needs() {
        let pt = [PassthroughDev { reg: Region { base: 0x0a00_3000, size: 0x1000 }, irq: Some(79), compatible: "virtio,mmio".into(), dma: true, crossbar_input: None }];
        let dt = GuestDt {
            name: "ivi",
            vcpus: 2,
            mem_size: 256 << 20,
            ram_ipa: gl::RAM0_BASE,
            bootargs: "console=ttyAMA0",
            initrd: Some((0x4e00_0000, 0x4e20_0000)),
            passthrough: &pt,
            xen: None,
            gic_v2: false,
            a32: false,
        }
        .build()
        .unwrap();
        // Read it back with an independent parser: dtc's text form via the
        // FDT structure would need a tool; check the magic and the strings.
        assert_eq!(&dt[..4], &[0xd0, 0x0d, 0xfe, 0xed]);
        let text = String::from_utf8_lossy(&dt);
        for needle in ["arm,gic-v3", "arm,armv8-timer", "arm,sbsa-uart", "arm,psci-1.0", "console=ttyAMA0", "virtio,mmio", "cpu@1", "linux,initrd-start"] {
            assert!(text.contains(needle), "missing {needle}");
        }
        assert!(!text.contains("cpu@2"), "only two vCPUs");
    }

    #[test]
    fn a_gicv2_boards_guest_sees_a_gicv2() {
        let dt = GuestDt {
            name: "cluster",
            vcpus: 1,
            mem_size: 64 << 20,
            ram_ipa: gl::RAM0_BASE,
            bootargs: "",
            initrd: None,
            passthrough: &[],
            xen: None,
            gic_v2: true,
            a32: false,
        }
        .build()
        .unwrap();
        let text = String::from_utf8_lossy(&dt);
        assert!(text.contains("arm,cortex-a15-gic"));
        assert!(!text.contains("arm,gic-v3") && !text.contains("#redistributor-regions"));
    }

    #[test]
    fn a_32_bit_boards_guest_has_cortex_a15s_and_the_armv7_timer() {
        let dt = GuestDt {
            name: "cluster",
            vcpus: 2,
            mem_size: 64 << 20,
            ram_ipa: gl::RAM0_BASE,
            bootargs: "",
            initrd: None,
            passthrough: &[],
            xen: None,
            gic_v2: true,
            a32: true,
        }
        .build()
        .unwrap();
        let text = String::from_utf8_lossy(&dt);
        assert!(text.contains("arm,cortex-a15\0") && text.contains("arm,armv7-timer"));
        assert!(!text.contains("arm,armv8"), "no Armv8 CPU or timer");
    }

    #[test]
    fn reads_a_zimage_header() {
        let mut img = vec![0u8; 0x40];
        img[0x24..0x28].copy_from_slice(&0x016F_2818u32.to_le_bytes());
        img[0x2c..0x30].copy_from_slice(&0x50_0000u32.to_le_bytes());
        let h = zimage_header(&img).unwrap();
        assert_eq!(h, ImageHeader { text_offset: ZIMAGE_OFFSET, image_size: 0x50_0000 + ZIMAGE_SLACK });
        // An arm64 Image is not a zImage, nor is a truncated one.
        assert_eq!(kernel_header("armv7a", &img[..0x2c]), None);
        img[0x24] = 0;
        assert_eq!(kernel_header("armv7a", &img), None);
    }
}
