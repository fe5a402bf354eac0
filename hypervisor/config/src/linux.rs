//! Linux domains: `kind = "linux"`, their kernel, initrd and command line,
//! and host devices passed through to a domain.

use std::path::Path;

use toml::Spanned;

use crate::board::Board;
use crate::error::{self, ConfigError, Source};
use crate::sample::{domain_label, Domain, ImageRef, Kind, PassthroughDev, RawDomain, RawPassthrough};
use crate::Region;
use xen_abi::guest_layout as gl;

/// Debian packages `image = "debian:<package>"` may name, with the board
/// `arch` they run on (armhf's LPAE flavour is the one that runs under a
/// hypervisor).
pub const DEBIAN_KERNELS: &[(&str, &str)] = &[("linux-image-arm64", "aarch64"), ("linux-image-armmp-lpae", "armv7a")];
/// Passthrough devices per domain (the bundle's limit).
const MAX_PASSTHROUGH: usize = hv_core::bundle::MAX_PASSTHROUGH;
/// SPIs the virtual GIC offers (INTIDs 32..=LAST_SPI).
const LAST_SPI: i64 = hv_core::vgic::NR_IRQS as i64 - 1;

pub(crate) struct LinuxPart {
    pub kind: Kind,
    pub initrd: Option<ImageRef>,
    pub bootargs: String,
    pub passthrough: Vec<PassthroughDev>,
    pub direct_map: bool,
}

pub(crate) fn domain(
    src: &Source<'_>,
    board: &Board,
    d: &RawDomain,
    f: &dyn Fn(&str) -> String,
    dir: &Path,
    image: &ImageRef,
) -> Result<LinuxPart, ConfigError> {
    let kind = match &d.kind {
        None => Kind::Bare,
        Some(k) => match k.get_ref().as_str() {
            "bare" => Kind::Bare,
            "linux" => Kind::Linux,
            other => {
                return Err(src.error(k, f("kind"), format!("unknown kind \"{other}\"; expected \"bare\" or \"linux\"")))
            }
        },
    };
    let only_linux = |v: &Option<Spanned<String>>, key: &str| -> Result<(), ConfigError> {
        match v {
            Some(v) if kind != Kind::Linux => {
                Err(src.error(v, f(key), format!("`{key}` is only for kind = \"linux\" domains")))
            }
            _ => Ok(()),
        }
    };
    only_linux(&d.initrd, "initrd")?;
    only_linux(&d.bootargs, "bootargs")?;
    if kind == Kind::Linux {
        if let ImageRef::Guest(_) = image {
            return Err(src.error(&d.image, f("image"), "a linux domain boots a kernel Image, not a built-in test guest"));
        }
        if let Some(o) = &d.load_offset {
            return Err(src.error(o, f("load_offset"), "a linux domain's load offset comes from its kernel image's header"));
        }
    }
    let initrd = match &d.initrd {
        None => None,
        Some(v) => Some(initrd(src, v, &f("initrd"), dir)?),
    };
    let bootargs = d.bootargs.as_ref().map(|b| b.get_ref().clone()).unwrap_or_default();
    if bootargs.len() > 1024 {
        return Err(src.error(d.bootargs.as_ref().expect("set"), f("bootargs"), "bootargs longer than 1024 bytes"));
    }

    let mut passthrough = Vec::new();
    if let Some(list) = &d.passthrough {
        if list.get_ref().len() > MAX_PASSTHROUGH {
            return Err(src.error(list, f("passthrough"), format!("at most {MAX_PASSTHROUGH} passthrough devices per domain")));
        }
        for entry in list.get_ref() {
            let p = entry.get_ref();
            let (reg, irq, compatible, catalog_dma, crossbar_input) = match &p.device {
                Some(name) => from_catalog(src, board, name, p, f)?,
                None => given(src, board, entry, f)?,
            };
            // The catalog's word on DMA stands: a sample cannot switch it off.
            if catalog_dma && p.dma.as_ref().is_some_and(|d| !*d.get_ref()) {
                return Err(src.error(p.dma.as_ref().expect("set"), f("passthrough.dma"), "the board's catalog says this device masters memory: it cannot be passed through with dma = false"));
            }
            let dma = catalog_dma || p.dma.as_ref().is_some_and(|d| *d.get_ref());
            if dma && !d.direct_map.as_ref().is_some_and(|m| *m.get_ref()) {
                return Err(src.error_at(
                    p.dma.as_ref().map_or(entry.span(), |m| m.span()),
                    f("passthrough.dma"),
                    "a device that does DMA needs `direct_map = true` on its domain: without an IOMMU it sees host addresses, so guest RAM must sit at the same addresses",
                ));
            }
            passthrough.push(PassthroughDev { reg, irq, compatible, dma, crossbar_input });
        }
    }
    let direct_map = d.direct_map.as_ref().is_some_and(|m| *m.get_ref());
    if direct_map && kind != Kind::Linux {
        return Err(src.error(d.direct_map.as_ref().expect("set"), f("direct_map"), "only linux domains can be direct-mapped (test guests are linked at the usual guest RAM address)"));
    }
    Ok(LinuxPart { kind, initrd, bootargs, passthrough, direct_map })
}

fn initrd(src: &Source<'_>, v: &Spanned<String>, field: &str, dir: &Path) -> Result<ImageRef, ConfigError> {
    let s = v.get_ref();
    if let Some(name) = s.strip_prefix("initramfs:") {
        let path = dir.join("initramfs").join(name);
        if name.is_empty() || name.contains(['/', '\\']) || !path.is_dir() {
            return Err(src.error(
                v,
                field,
                format!("no initramfs directory \"{name}\" (looked for {})", path.display()),
            ));
        }
        return Ok(ImageRef::Initramfs(path));
    }
    let path = dir.join(s);
    if s.is_empty() || !path.is_file() {
        return Err(src.error(
            v,
            field,
            format!("initrd file \"{s}\" not found (looked for {}); or write \"initramfs:<name>\"", path.display()),
        ));
    }
    Ok(ImageRef::File(path))
}

/// (registers, interrupt, compatible, DMA, crossbar input) of a
/// passthrough entry.
type Passed = (Region, Option<u32>, String, bool, Option<u16>);

/// `device = "<name>"`: the board's catalog entry, if one region and at
/// most one interrupt the virtual GIC offers.
fn from_catalog(src: &Source<'_>, board: &Board, name: &Spanned<String>, p: &RawPassthrough, f: &dyn Fn(&str) -> String) -> Result<Passed, ConfigError> {
    let field = f("passthrough.device");
    if p.base.is_some() || p.size.is_some() || p.irq.is_some() || p.compatible.is_some() {
        return Err(src.error(name, field, "the board's catalog gives the device's registers, interrupt and compatible: give `device` alone"));
    }
    let Some(dev) = board.devices.iter().find(|d| &d.name == name.get_ref()) else {
        let offered: Vec<&str> = board.devices.iter().map(|d| d.name.as_str()).collect();
        let offers = if offered.is_empty() { "none".to_string() } else { error::quoted_list(&offered) };
        return Err(src.error(name, field, format!("board \"{}\" offers no device \"{}\" for passthrough; it offers: {offers}", board.name, name.get_ref())));
    };
    if dev.regs.len() != 1 {
        return Err(src.error(name, field, format!("{} has {} register regions; a passthrough carries one (multi-region devices are not supported yet)", dev.name, dev.regs.len())));
    }
    let interrupts = dev.irqs.len() + dev.crossbar_inputs.len();
    if interrupts > 1 {
        return Err(src.error(name, field, format!("{} has {interrupts} interrupts; a passthrough carries one (multi-interrupt devices are not supported yet)", dev.name)));
    }
    let irq = dev.irqs.first().copied();
    if let Some(i) = irq.filter(|&i| i64::from(i) > LAST_SPI) {
        return Err(src.error(name, field, format!("{}'s interrupt (INTID {i}) is beyond the SPIs the virtual GIC offers (32..={LAST_SPI})", dev.name)));
    }
    let reg = dev.regs[0];
    if reg.pages() != reg {
        return Err(src.error(name, field, format!("{}'s registers {} are not whole pages: passing them through would hand over the rest of their pages too", dev.name, error::range(reg.base, reg.size))));
    }
    // Its GIC line is planned with every other routed input
    // (`crossbar::route_passthrough`).
    Ok((reg, irq, dev.compatible.clone(), dev.dma, dev.crossbar_inputs.first().copied()))
}

/// A region given by address: on a board with a catalog, inside one of
/// its devices, with that device's interrupt.
fn given(src: &Source<'_>, board: &Board, entry: &Spanned<RawPassthrough>, f: &dyn Fn(&str) -> String) -> Result<Passed, ConfigError> {
    let p = entry.get_ref();
    let (Some(base), Some(size), Some(compatible)) = (&p.base, &p.size, &p.compatible) else {
        return Err(src.error(entry, f("passthrough"), "give `device` (a name from the board's catalog), or `base`, `size` and `compatible`"));
    };
    let reg = Region { base: *base.get_ref(), size: size.get_ref().0 };
    if reg.size == 0 || reg.base.checked_add(reg.size).is_none_or(|e| e > 1 << 39) {
        return Err(src.error(base, f("passthrough.base"), "a passthrough region needs a size and must lie below 512 GiB"));
    }
    let irq = match &p.irq {
        None => None,
        Some(i) if (32..=LAST_SPI).contains(i.get_ref()) => Some(*i.get_ref() as u32),
        Some(i) => {
            return Err(src.error(i, f("passthrough.irq"), format!("irq {} is not an SPI the virtual GIC offers (32..={LAST_SPI}, as a GIC INTID)", i.get_ref())));
        }
    };
    if compatible.get_ref().is_empty() {
        return Err(src.error(compatible, f("passthrough.compatible"), "give the device tree `compatible` of the device"));
    }
    let mut dma = false;
    if !board.devices.is_empty() {
        // Whole pages are mapped: they must all be the device's.
        let Some(dev) = board.devices.iter().find(|d| d.regs.iter().any(|r| r.contains(&reg.pages()))) else {
            return Err(src.error(
                base,
                f("passthrough.base"),
                format!("board \"{}\" offers no device at {}: passthrough is limited to its catalog ([[board.devices]] in {})", board.name, error::range(reg.base, reg.size), board.path.display()),
            ));
        };
        if let Some(i) = irq.filter(|i| !dev.irqs.contains(i)) {
            return Err(src.error_at(p.irq.as_ref().map_or(base.span(), |i| i.span()), f("passthrough.irq"), format!("irq {i} is not {}'s (its interrupts: {:?})", dev.name, dev.irqs)));
        }
        dma = dev.dma;
    }
    Ok((reg, irq, compatible.get_ref().clone(), dma, None))
}

/// Routes every passed-through crossbar input (TI's IRQ crossbar) to a GIC
/// line of its own: the device's `irq` becomes that line's INTID. Lines
/// are planned once for the whole system (`hv_core::crossbar`), so two
/// domains never share one.
pub(crate) fn route_crossbar(src: &Source<'_>, raw: &[Spanned<RawDomain>], board: &Board, domains: &mut [Domain]) -> Result<(), ConfigError> {
    let inputs: Vec<(usize, usize, u16)> = domains
        .iter()
        .enumerate()
        .flat_map(|(i, d)| d.passthrough.iter().enumerate().filter_map(move |(j, p)| p.crossbar_input.map(|x| (i, j, x))))
        .collect();
    let Some(xbar) = board.crossbar.as_ref().filter(|_| !inputs.is_empty()) else { return Ok(()) };
    let list: Vec<u16> = inputs.iter().map(|&(_, _, x)| x).collect();
    let routes = xbar.desc().plan(&list).map_err(|e| {
        use hv_core::crossbar::CrossbarError as E;
        let (input, why) = match e {
            E::NoSuchInput { input, sources } => (input, format!("crossbar input {input} does not exist (the crossbar has {sources})")),
            E::Twice { input } => (input, format!("crossbar input {input} is passed through twice")),
            E::OutOfLines { input } => (input, format!("no free GIC line is left behind the crossbar for input {input}")),
            E::BadBoard => (list[0], "the board's crossbar facts are not ones the hypervisor can drive".into()),
        };
        // The last entry asking for the input is the one that failed.
        let &(i, j, _) = inputs.iter().rev().find(|t| t.2 == input).unwrap_or(&inputs[0]);
        let entry = raw[i].get_ref().passthrough.as_ref().map(|l| l.get_ref()[j].span()).unwrap_or(raw[i].span());
        src.error_at(entry, format!("{}.passthrough", domain_label(i, Some(&domains[i].name))), why)
    })?;
    for (&(i, j, input), r) in inputs.iter().zip(&routes) {
        if i64::from(r.intid()) > LAST_SPI {
            let entry = raw[i].get_ref().passthrough.as_ref().map(|l| l.get_ref()[j].span()).unwrap_or(raw[i].span());
            return Err(src.error_at(
                entry,
                format!("{}.passthrough", domain_label(i, Some(&domains[i].name))),
                format!("crossbar input {input} would take GIC line {} (INTID {}), beyond the SPIs the virtual GIC offers (32..={LAST_SPI}): the board's crossbar has more lines than a domain can be shown", r.line, r.intid()),
            ));
        }
        domains[i].passthrough[j].irq = Some(r.intid());
    }
    Ok(())
}

/// A device belongs to one domain only, and must not sit on RAM, the
/// hypervisor's own devices or the addresses of a domain's emulated ones.
pub(crate) fn check_passthrough_exclusive(
    src: &Source<'_>,
    raw: &[Spanned<RawDomain>],
    board: &Board,
    domains: &[Domain],
) -> Result<(), ConfigError> {
    let mut reserved = vec![("the board's RAM", board.ram)];
    reserved.extend(board.own_frames().into_iter().map(|f| (f.what, Region { base: f.base, size: f.size })));
    reserved.extend(board.reserved.iter().map(|r| ("firmware's reserved memory", r.region)));
    reserved.extend([
        ("the guests' virtual GIC", Region { base: gl::GICD_BASE, size: gl::GICR_BASE + gl::GICR_REGION_SIZE - gl::GICD_BASE }),
        ("the guests' virtual PL011", Region { base: gl::PL011_BASE, size: gl::PL011_SIZE }),
    ]);
    let mut seen: Vec<(usize, &PassthroughDev)> = Vec::new();
    for (i, d) in domains.iter().enumerate() {
        let Some(list) = &raw[i].get_ref().passthrough else { continue };
        // The device sits at its own address in the domain's IPA space:
        // clear of the domain's RAM there (a direct-mapped domain's RAM
        // is at its host address, so on boards whose devices share the
        // usual guest RAM window, such as the J6's, it takes devices).
        let ram_ipa = Region { base: d.ram_ipa(), size: d.memory.size };
        let own = [("the domain's RAM (its guest addresses)", ram_ipa)];
        for (j, p) in d.passthrough.iter().enumerate() {
            let at = &list.get_ref()[j];
            let field = format!("{}.passthrough", domain_label(i, Some(&d.name)));
            if let Some((what, _)) = reserved.iter().chain(&own).find(|(_, r)| r.overlaps(&p.pages())) {
                return Err(src.error(
                    at,
                    field,
                    format!("region {}+{} (its pages) overlaps {what}", error::addr(p.reg.base), error::size(p.reg.size)),
                ));
            }
            for (k, q) in &seen {
                let other = domain_label(*k, Some(&domains[*k].name));
                // Devices of one domain may share a page (QEMU packs eight
                // virtio-mmio slots in one); their registers may not overlap.
                if (*k != i && q.pages().overlaps(&p.pages())) || q.reg.overlaps(&p.reg) {
                    return Err(src.error(at, field, format!("region {} is already passed through to {other}", error::addr(p.reg.base))));
                }
                if p.irq.is_some() && q.irq == p.irq {
                    return Err(src.error(at, field, format!("irq {} is already passed through to {other}", p.irq.unwrap_or(0))));
                }
            }
            if d.vpl011 && p.irq == Some(gl::PL011_SPI) {
                return Err(src.error(
                    at,
                    field,
                    format!("irq {} is the domain's virtual PL011's: pass the device to a domain without `vpl011`, or route it elsewhere", gl::PL011_SPI),
                ));
            }
            seen.push((i, p));
        }
    }
    Ok(())
}
