//! Encodes a validated [`Sample`] and its images into the boot bundle.

use hv_core::bundle::{encode, DomainDesc, Passthrough, FLAG_SYSTEM_CONTROLLER, FLAG_VPL011, FLAG_XEN, MAX_PASSTHROUGH, MAX_VCPUS};

use crate::guest_dt::{kernel_header, GuestDt};
use crate::sample::Kind;

use crate::error::{self, ConfigError};
use crate::sample::{domain_label, image_line};
use crate::Sample;
use crate::board::Gic;

/// What the caller resolved for one domain from its [`crate::ImageRef`]s.
#[derive(Clone, Debug, Default)]
pub struct DomainBlobs {
    pub image: Vec<u8>,
    pub initrd: Option<Vec<u8>>,
    /// Bytes a bare image takes from its load address once running: its
    /// bss and stack too, which the image file does not hold.
    pub footprint: u64,
}

impl From<Vec<u8>> for DomainBlobs {
    fn from(image: Vec<u8>) -> Self {
        let footprint = image.len() as u64;
        DomainBlobs { image, initrd: None, footprint }
    }
}

impl DomainBlobs {
    /// The image's end in memory, from its load address: the larger of
    /// its file and its footprint.
    fn extent(&self) -> u64 {
        self.footprint.max(self.image.len() as u64)
    }
}

/// Every domain's seed, for counting who owns what.
fn seeds_of_all(domains: &[crate::Domain]) -> Result<Vec<Vec<u8>>, ConfigError> {
    (0..domains.len()).map(|i| crate::xenstore_seed::seed(domains, i).map_err(|e| ConfigError::new(std::path::Path::new(""), None, "xen", e))).collect()
}

/// The domains (bit j) with a device domain `i` serves, of the kinds `which` picks.
fn frontends_of(sample: &Sample, i: usize, which: impl Fn(&pv_backend::toolstack::DeviceSpec) -> bool) -> u8 {
    let be = crate::xenstore_seed::domid(i);
    sample.domains.iter().enumerate().filter(|(_, f)| f.pv.iter().any(|s| s.be_dom == be && which(s))).fold(0, |m, (j, _)| m | 1 << j)
}

/// The part of a domain's descriptor that places its Xen pages.
fn xen_desc(d: &crate::Domain) -> DomainDesc<'static> {
    DomainDesc {
        flags: if d.xen.is_some() { FLAG_XEN } else { 0 },
        ram_ipa: d.ram_ipa(),
        mem_size: d.memory.size,
        grant_frames: d.xen.map_or(0, |x| x.grant_frames),
        event_channels: d.xen.map_or(0, |x| x.event_channels),
        ..Default::default()
    }
}

/// Space left at the top of a Linux domain's RAM for its device tree.
const DTB_SLOT: u64 = 2 << 20;
/// The most memory a 32-bit Linux domain takes (within its kernel's lowmem).
const A32_LOWMEM: u64 = 512 << 20;

/// Space below a bare domain's Xen pages for its device tree.
const BARE_DTB_SLOT: u64 = 64 << 10;

/// A bare domain offered Xen's guest ABI finds it as Linux does, through
/// the `/hypervisor` node of a device tree (its address in x0), placed
/// just below its Xen pages. Other bare domains get none.
fn bare_layout(sample: &Sample, i: usize, d: &crate::sample::Domain, b: &DomainBlobs) -> Result<(Option<LinuxLayout>, Vec<u8>), ConfigError> {
    let Some(xen) = xen_desc(d).xen() else {
        return Ok((None, Vec::new()));
    };
    let field = || format!("{}.image", domain_label(i, Some(&d.name)));
    let dtb = d.memory.size.checked_sub(xen.size + BARE_DTB_SLOT);
    let image_end = d.load_offset + b.extent();
    let Some(dtb) = dtb.filter(|&at| image_end <= at) else {
        return Err(ConfigError::new(
            &sample.path,
            image_line(&sample.path, i),
            field(),
            format!(
                "the image with its bss and stack ({}), its device tree ({}) and Xen pages ({}) do not fit in {} of memory; raise memory",
                error::size(image_end),
                error::size(BARE_DTB_SLOT),
                error::size(xen.size),
                error::size(d.memory.size)
            ),
        ));
    };
    let dt = GuestDt {
        name: &d.name,
        vcpus: d.vcpus,
        mem_size: d.memory.size,
        bootargs: &d.bootargs,
        ram_ipa: d.ram_ipa(),
        initrd: None,
        passthrough: &d.passthrough,
        xen: Some(xen),
        gic_v2: matches!(sample.board.gic, Gic::V2 { .. }),
        a32: sample.board.arch == "armv7a",
    }
    .build()
    .map_err(|e| ConfigError::new(&sample.path, None, field(), format!("cannot write its device tree: {e}")))?;
    if dt.len() as u64 > BARE_DTB_SLOT {
        return Err(ConfigError::new(&sample.path, None, field(), "its device tree is larger than 64 KiB"));
    }
    Ok((Some(LinuxLayout { kernel: d.load_offset, initrd: 0, dtb }), dt))
}

/// Where a domain's kernel, initrd and device tree go in its RAM.
struct LinuxLayout {
    kernel: u64,
    initrd: u64,
    dtb: u64,
}

/// Encodes `sample` into a boot bundle. `blobs[i]` holds domain `i`'s image
/// (and initrd); each must fit in the domain's memory. Linux domains get
/// their kernel at the Image header's text offset, the device tree in the
/// top 2 MiB and the initrd just below it.
pub fn encode_bundle(sample: &Sample, blobs: &[DomainBlobs]) -> Result<Vec<u8>, ConfigError> {
    if blobs.len() != sample.domains.len() {
        return Err(ConfigError::new(
            &sample.path,
            None,
            "domain",
            format!("{} domains but {} images were given to encode", sample.domains.len(), blobs.len()),
        ));
    }
    let mut dtbs = Vec::new();
    let mut layouts = Vec::new();
    for (i, (d, b)) in sample.domains.iter().zip(blobs).enumerate() {
        let field = || format!("{}.image", domain_label(i, Some(&d.name)));
        if d.kind != Kind::Linux {
            let (layout, dt) = bare_layout(sample, i, d, b)?;
            layouts.push(layout);
            dtbs.push(dt);
            continue;
        }
        let a32 = sample.board.arch == "armv7a";
        let hdr = kernel_header(&sample.board.arch, &b.image).ok_or_else(|| {
            let what = if a32 { "not an Armv7 Linux zImage (no magic 0x016F2818 at 0x24)" } else { "not an arm64 Linux Image (no \"ARM\\x64\" header)" };
            ConfigError::new(&sample.path, image_line(&sample.path, i), field(), what)
        })?;
        // A 32-bit kernel maps its low memory only (768 MiB with the usual
        // 3G/1G split); its device tree and initrd must lie there.
        if a32 && d.memory.size > A32_LOWMEM {
            return Err(ConfigError::new(
                &sample.path,
                image_line(&sample.path, i),
                format!("{}.memory", domain_label(i, Some(&d.name))),
                format!("a 32-bit Linux domain takes at most {} of memory here (its device tree and initrd go at the top, which its kernel must map)", error::size(A32_LOWMEM)),
            ));
        }
        let dtb = d.memory.size.saturating_sub(DTB_SLOT);
        let initrd_len = b.initrd.as_ref().map_or(0, |r| r.len() as u64);
        let initrd = dtb.saturating_sub(initrd_len) & !0xfff;
        // The header is the image's own (a file): saturate, never overflow.
        let kernel_end = hdr.text_offset.saturating_add(hdr.image_size.max(b.image.len() as u64));
        if kernel_end > initrd || dtb == 0 {
            return Err(ConfigError::new(
                &sample.path,
                image_line(&sample.path, i),
                field(),
                format!(
                    "kernel ({}), initrd ({}) and device tree (2 MiB) do not fit in {} of memory; raise memory",
                    error::size(kernel_end),
                    error::size(initrd_len),
                    error::size(d.memory.size)
                ),
            ));
        }
        let xen = xen_desc(d).xen();
        if let Some(x) = xen {
            // The device tree's slot holds the Xen pages at its top.
            if x.size >= DTB_SLOT / 2 {
                return Err(ConfigError::new(&sample.path, None, field(), "its Xen pages do not fit beside the device tree"));
            }
        }
        let dt = GuestDt {
            name: &d.name,
            vcpus: d.vcpus,
            mem_size: d.memory.size,
            bootargs: &d.bootargs,
            ram_ipa: d.ram_ipa(),
            initrd: b.initrd.as_ref().map(|_| (d.ram_ipa() + initrd, d.ram_ipa() + initrd + initrd_len)),
            passthrough: &d.passthrough,
            xen,
            gic_v2: matches!(sample.board.gic, Gic::V2 { .. }),
            a32,
        }
        .build()
        .map_err(|e| ConfigError::new(&sample.path, None, field(), format!("cannot write its device tree: {e}")))?;
        dtbs.push(dt);
        layouts.push(Some(LinuxLayout { kernel: hdr.text_offset, initrd, dtb }));
    }

    let mut seeds = Vec::new();
    for (i, d) in sample.domains.iter().enumerate() {
        let field = format!("{}.xen", domain_label(i, Some(&d.name)));
        let seed = crate::xenstore_seed::seed(&sample.domains, i).map_err(|e| ConfigError::new(&sample.path, None, field.clone(), e))?;
        if let Some(x) = d.xen {
            // Its own nodes from the description count against its quota;
            // leave it room for what its kernel writes.
            let own = crate::xenstore_seed::owned_by(&seeds_of_all(&sample.domains)?, crate::xenstore_seed::domid(i));
            if own + 16 > usize::from(x.xenstore.nodes) {
                return Err(ConfigError::new(
                    &sample.path,
                    None,
                    format!("{field}.xenstore_nodes"),
                    format!("its devices and home take {own} nodes of the store; xenstore_nodes = {} leaves its kernel too little room (at least {})", x.xenstore.nodes, own + 16),
                ));
            }
        }
        seeds.push(seed);
    }
    let mut descs = Vec::new();
    for (i, (d, b)) in sample.domains.iter().zip(blobs).enumerate() {
        let image = &b.image;
        let room = d.memory.size.saturating_sub(d.load_offset);
        if layouts[i].is_none() && b.extent() > room {
            return Err(ConfigError::new(
                &sample.path,
                image_line(&sample.path, i),
                format!("{}.image", domain_label(i, Some(&d.name))),
                format!(
                    "the image takes {} bytes with its bss and stack but only {} bytes ({}) fit: memory {} minus load_offset {}; raise memory or shrink the image",
                    b.extent(),
                    room,
                    error::size(room),
                    error::size(d.memory.size),
                    error::addr(d.load_offset)
                ),
            ));
        }
        let mut pins = [0u8; MAX_VCPUS];
        pins[..d.pcpus.len()].copy_from_slice(&d.pcpus);
        let mut flags = 0;
        if d.system_controller {
            flags |= FLAG_SYSTEM_CONTROLLER;
        }
        if d.vpl011 {
            flags |= FLAG_VPL011;
        }
        if d.xen.is_some() {
            flags |= FLAG_XEN;
        }
        let mut passthrough = [Passthrough::default(); MAX_PASSTHROUGH];
        for (slot, p) in passthrough.iter_mut().zip(&d.passthrough) {
            let pages = p.pages();
            *slot = Passthrough { pa: pages.base, size: pages.size, spi: p.irq.unwrap_or(0) };
        }
        let mut desc = DomainDesc {
            name: &d.name,
            vcpus: d.vcpus,
            pins,
            flags,
            on_poweroff: d.on_poweroff,
            on_reboot: d.on_reboot,
            on_crash: d.on_crash,
            mem_pa: d.memory.base,
            ram_ipa: d.ram_ipa(),
            mem_size: d.memory.size,
            load_offset: d.load_offset,
            image,
            passthrough,
            npassthrough: d.passthrough.len().min(MAX_PASSTHROUGH) as u8,
            rtds_budget_us: d.rtds.map_or(0, |r| r.0),
            rtds_period_us: d.rtds.map_or(0, |r| r.1),
            grant_frames: d.xen.map_or(0, |x| x.grant_frames),
            event_channels: d.xen.map_or(0, |x| x.event_channels),
            xenstore: d.xen.map_or(hv_core::xenstore::Quota::DEFAULT, |x| x.xenstore),
            xenstore_seed: &seeds[i],
            serves: frontends_of(sample, i, |_| true),
            foreign: frontends_of(sample, i, |s| s.fe_kind == "vfb"),
            ..Default::default()
        };
        if let Some(l) = &layouts[i] {
            desc.load_offset = l.kernel;
            desc.dtb = &dtbs[i];
            desc.dtb_offset = l.dtb;
            if let Some(rd) = &b.initrd {
                desc.initrd = rd;
                desc.initrd_offset = l.initrd;
            }
        }
        descs.push(desc);
    }
    let board = sample.board.desc(sample.profile.vwfi, sample.profile.scheduler);
    encode(&board, &crossbar_writes(sample), &descs)
        .map_err(|e| ConfigError::new(&sample.path, None, "bundle", format!("cannot encode the boot bundle: {e:?}")))
}

/// Every crossbar register the hypervisor writes at boot: the lines the
/// build routed passed-through inputs to carry them, every other line with
/// a register is parked on the board's safe input. Empty without a
/// crossbar.
pub fn crossbar_writes(sample: &Sample) -> Vec<hv_core::bundle::CrossbarWrite> {
    let Some(xbar) = &sample.board.crossbar else { return Vec::new() };
    let routes: Vec<hv_core::crossbar::Route> = sample
        .domains
        .iter()
        .flat_map(|d| &d.passthrough)
        .filter_map(|p| Some(hv_core::crossbar::Route { input: p.crossbar_input?, line: u16::try_from(p.irq?.checked_sub(32)?).ok()? }))
        .collect();
    let desc = xbar.desc();
    desc.writes(&routes, xbar.safe)
        .filter_map(|(offset, value)| Some(hv_core::bundle::CrossbarWrite { offset: u16::try_from(offset).ok()?, value }))
        .collect()
}
