//! `<bsp_dir>/<board>/board.toml`: the board's CPUs, interrupt controller,
//! console, RAM, QEMU settings and tuned profiles.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hv_core::bundle::{BoardDesc, GicVersion, Scheduler, UartKind, Vwfi, MAX_VCPUS};
use hv_core::el2_map;
use serde::Deserialize;
use toml::Spanned;

use crate::error::{self, ConfigError, Source};
use crate::size::Size;
use crate::MEMORY_ALIGN;

/// A physical address range `[base, base + size)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Region {
    pub base: u64,
    pub size: u64,
}

impl Region {
    /// One past the last byte (saturating).
    pub fn end(&self) -> u64 {
        self.base.saturating_add(self.size)
    }

    /// Whether `other` lies entirely inside `self`.
    pub fn contains(&self, other: &Region) -> bool {
        other.base >= self.base && other.end() <= self.end() && other.base.checked_add(other.size).is_some()
    }

    pub fn contains_addr(&self, addr: u64) -> bool {
        addr >= self.base && addr < self.end()
    }

    pub fn overlaps(&self, other: &Region) -> bool {
        self.base < other.end() && other.base < self.end()
    }

    /// The whole 4 KiB pages holding the region: what stage 2 maps.
    pub fn pages(&self) -> Region {
        let base = self.base & !0xfff;
        let end = self.end().next_multiple_of(0x1000);
        Region { base, size: end - base }
    }
}

/// How QEMU runs this board (`cargo xtask run`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QemuConfig {
    pub machine: String,
    pub cpu: String,
    pub memory: String,
    /// Where QEMU's guest-loader places the boot bundle (a /chosen module);
    /// `None`: QEMU loads it as the initrd (a machine given `dtb`, which
    /// guest-loader cannot add modules to).
    pub bundle_addr: Option<u64>,
    /// For a machine that builds no device tree: the board's, as a path in
    /// Debian's arm64 kernel package's `/usr/lib/linux-image-<version>/`.
    pub dtb: Option<String>,
}

/// A tuned set of hypervisor policies, chosen per sample.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    pub name: String,
    pub scheduler: Scheduler,
    pub vwfi: Vwfi,
    /// Whether one domain or cpupool may span CPU clusters (on big.LITTLE,
    /// cores of different kinds). Off unless the profile says so.
    pub mix_clusters: bool,
}

/// Memory the board's firmware keeps (TF-A, OP-TEE, remote-processor
/// firmware): nothing of ours may be placed there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reserved {
    pub region: Region,
    pub what: String,
}

/// Where the board's upstream device tree comes from, for the check of
/// this file's facts against it (`cargo xtask test`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DtSource {
    /// The tree QEMU's `[qemu]` machine builds (`-machine dumpdtb=`).
    Qemu,
    /// A `.dtb` in Debian's arm64 kernel package (`/usr/lib/linux-image-<v>/<path>`).
    DebianDtb(String),
    /// A `.dts` under `arch/arm64/boot/dts/` of Debian's Linux source
    /// package, compiled with `cpp` and `dtc`.
    LinuxDts(String),
}

/// The board's interrupt controller: which architecture version, and
/// where its frames are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gic {
    /// Distributor and redistributors; system-register CPU interfaces.
    V3 { gicd: u64, gicr: u64 },
    /// Distributor, CPU interface (GICC), virtual interface control (GICH)
    /// and virtual CPU interface (GICV). GICC and GICV are the 8 KiB the
    /// architecture defines, contiguous: on a GIC-400 whose frames are
    /// 64 KiB-aliased that is the last alias of the first page.
    V2 { gicd: u64, gicc: u64, gich: u64, gicv: u64 },
}

impl Gic {
    pub fn gicd(&self) -> u64 {
        match *self {
            Gic::V3 { gicd, .. } | Gic::V2 { gicd, .. } => gicd,
        }
    }

    pub fn version(&self) -> u8 {
        match self {
            Gic::V3 { .. } => 3,
            Gic::V2 { .. } => 2,
        }
    }
}

/// TI's IRQ crossbar (DRA7): a peripheral's interrupt is a crossbar input
/// (a "source"), routed to one of `lines` GIC SPIs by a 16-bit register
/// per line at `base`. The hypervisor programs it from the board and
/// sample descriptions; guests see plain SPIs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Crossbar {
    pub base: u64,
    /// GIC SPIs behind the crossbar.
    pub lines: u32,
    /// Crossbar inputs.
    pub sources: u32,
    /// Lines wired to fixed sources, never to be reprogrammed.
    pub reserved: Vec<u32>,
    /// Lines that do not exist.
    pub skip: Vec<u32>,
    /// The input every line no domain uses is parked on (the tree's
    /// `ti,irqs-safe-map`), so nothing a boot loader routed reaches a
    /// domain's SPI.
    pub safe: u16,
}

impl Crossbar {
    /// The crossbar as the hypervisor plans its routes (`hv_core::crossbar`).
    pub fn desc(&self) -> hv_core::crossbar::Crossbar {
        use hv_core::crossbar::LineSet;
        hv_core::crossbar::Crossbar {
            lines: self.lines as u16,
            sources: self.sources as u16,
            // 16-bit registers: checked against the tree's ti,reg-size.
            reg_size: 2,
            reserved: LineSet::from_lines(&self.reserved).unwrap_or_default(),
            skip: LineSet::from_lines(&self.skip).unwrap_or_default(),
        }
    }
}

/// `secondary_boot = { kind = "ti-auxcoreboot", base = .. }`: the
/// secondary CPUs wait in the boot ROM until WakeupGen's AuxCoreBoot
/// registers (at `base` + 0x800) release them (TI DRA7; no PSCI).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SecondaryBoot {
    pub aux_core_boot: u64,
}

/// `counter = { kind = "ti-realtime", base = .., clksel = .. }`: TI DRA7's
/// realtime counter at `base`, programmed from the system clock that
/// CM_CLKSEL_SYS (at `clksel`) selects so that it ticks at 6.144 MHz.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CounterSetup {
    pub base: u64,
    pub clksel: u64,
}

/// A validated board file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Board {
    pub name: String,
    /// "aarch64", or "armv7a" (32-bit Armv7-A with the virtualization
    /// extensions and LPAE).
    pub arch: String,
    pub cpus: u32,
    /// The affinity (MPIDR) of each CPU, in device-tree order: pCPU `n` is
    /// `mpidr[n]`. CPUs whose Aff3..Aff1 agree form a cluster.
    pub mpidr: Vec<u64>,
    pub uart: u64,
    pub uart_kind: UartKind,
    pub gic: Gic,
    pub ram: Region,
    /// The part of `ram` handed out to domains.
    pub guest_ram: Region,
    /// Firmware's memory, inside or beside `ram`.
    pub reserved: Vec<Reserved>,
    /// The device trees the board's facts are checked against.
    pub devicetrees: Vec<DtSource>,
    /// The devices it offers for passthrough.
    pub devices: Vec<crate::devices::BoardDevice>,
    /// TI's IRQ crossbar, on boards that have one.
    pub crossbar: Option<Crossbar>,
    /// How secondary CPUs start where there is no PSCI (TI DRA7's
    /// AuxCoreBoot registers).
    pub secondary_boot: Option<SecondaryBoot>,
    /// A counter the hypervisor sets up for the generic timer, where boot
    /// firmware does not (TI DRA7's realtime counter).
    pub counter: Option<CounterSetup>,
    pub qemu: Option<QemuConfig>,
    /// How the board's U-Boot boots an image (`cargo xtask image`).
    pub boot: Option<crate::boot::Boot>,
    /// Sorted by name.
    pub profiles: Vec<Profile>,
    pub default_profile: String,
    /// The board.toml this came from.
    pub path: PathBuf,
}

impl Board {
    pub fn profile(&self, name: &str) -> Option<&Profile> {
        self.profiles.iter().find(|p| p.name == name)
    }

    pub fn profile_names(&self) -> Vec<&str> {
        self.profiles.iter().map(|p| p.name.as_str()).collect()
    }

    /// pCPU `pcpu`'s cluster: its affinity without Aff0.
    pub fn cluster_of(&self, pcpu: usize) -> u64 {
        self.mpidr.get(pcpu).map_or(u64::MAX, |m| m & MPIDR_AFF_MASK & !0xff)
    }

    /// How many clusters the board's CPUs form.
    pub fn clusters(&self) -> usize {
        let mut c: Vec<u64> = (0..self.mpidr.len()).map(|p| self.cluster_of(p)).collect();
        c.sort_unstable();
        c.dedup();
        c.len()
    }
}

/// Why pCPU `next` may not join `set` (a domain's or a cpupool's pCPUs):
/// on a board of several clusters, one set stays in one cluster unless the
/// profile allows mixing. big.LITTLE clusters differ in core, caches and
/// errata, and a vCPU moved between them would see its MIDR change.
pub(crate) fn cluster_clash(board: &Board, profile: &Profile, set: &[u8], next: usize) -> Option<String> {
    let first = *set.first()? as usize;
    if profile.mix_clusters || board.cluster_of(first) == board.cluster_of(next) {
        return None;
    }
    Some(format!(
        "pCPU {next} (MPIDR {:#x}) is in another cluster than pCPU {first} (MPIDR {:#x}); profile \"{}\" keeps each domain and cpupool within one cluster (pin to one cluster's pCPUs, or set mix_clusters = true in the profile)",
        board.mpidr[next], board.mpidr[first], profile.name
    ))
}

/// The affinity fields of MPIDR_EL1 (Aff3, Aff2, Aff1, Aff0).
pub const MPIDR_AFF_MASK: u64 = 0xff_00ff_ffff;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBoardFile {
    board: Spanned<RawBoard>,
    qemu: Option<Spanned<RawQemu>>,
    #[serde(default)]
    profiles: BTreeMap<String, RawProfile>,
    devicetree: Option<RawDevicetree>,
    boot: Option<RawBoot>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBoot {
    /// U-Boot's `<interface> <dev>:<part>` of the boot partition.
    device: Spanned<String>,
    /// "u-boot" or "image".
    dtb: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDevicetree {
    /// "qemu", "debian-dtb:<path>" or "linux-dts:<path>".
    sources: Spanned<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCrossbar {
    base: Spanned<u64>,
    lines: Spanned<u32>,
    sources: Spanned<u32>,
    #[serde(default)]
    reserved: Vec<u32>,
    #[serde(default)]
    skip: Vec<u32>,
    safe: Spanned<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReserved {
    base: Spanned<u64>,
    size: Spanned<Size>,
    what: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBoard {
    name: Spanned<String>,
    arch: Spanned<String>,
    cpus: Spanned<i64>,
    /// One affinity per CPU; default 0, 1, ... (one cluster).
    mpidr: Option<Spanned<Vec<Spanned<u64>>>>,
    uart: Spanned<u64>,
    /// "pl011" (the default), "cadence", "scif" or "omap".
    uart_kind: Option<Spanned<String>>,
    /// "v2" or "v3".
    gic: Spanned<String>,
    gicd: Spanned<u64>,
    gicr: Option<Spanned<u64>>,
    gicc: Option<Spanned<u64>>,
    gich: Option<Spanned<u64>>,
    gicv: Option<Spanned<u64>>,
    ram: Spanned<RawRegion>,
    guest_ram: Spanned<RawRegion>,
    #[serde(default)]
    reserved: Vec<Spanned<RawReserved>>,
    /// The devices offered for passthrough.
    #[serde(default)]
    devices: Vec<Spanned<crate::devices::RawDevice>>,
    /// TI's IRQ crossbar in front of the GIC (DRA7).
    crossbar: Option<Spanned<RawCrossbar>>,
    /// How secondary CPUs start without PSCI (DRA7).
    secondary_boot: Option<Spanned<RawSecondaryBoot>>,
    /// The counter the hypervisor programs for the generic timer (DRA7).
    counter: Option<Spanned<RawCounter>>,
    default_profile: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSecondaryBoot {
    kind: Spanned<String>,
    base: Spanned<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCounter {
    kind: Spanned<String>,
    base: Spanned<u64>,
    clksel: Spanned<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegion {
    base: Spanned<u64>,
    size: Spanned<Size>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQemu {
    machine: String,
    cpu: String,
    memory: String,
    bundle_addr: Option<Spanned<u64>>,
    dtb: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    scheduler: Spanned<String>,
    vwfi: Spanned<String>,
    #[serde(default)]
    mix_clusters: bool,
}

/// Picks the value named by a string, or says which strings are allowed.
pub(crate) fn choose<T: Copy>(
    src: &Source<'_>,
    value: &Spanned<String>,
    field: &str,
    choices: &[(&str, T)],
) -> Result<T, ConfigError> {
    let v = value.get_ref();
    choices.iter().find(|(name, _)| name == v).map(|&(_, t)| t).ok_or_else(|| {
        let allowed: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
        src.error(value, field, format!("unknown value \"{v}\"; allowed values: {}", error::quoted_list(&allowed)))
    })
}

/// Reads and validates `<bsp_dir>/<board>/board.toml`.
pub fn load_board(bsp_dir: &Path, board: &str) -> Result<Board, ConfigError> {
    let path = bsp_dir.join(board).join("board.toml");
    let text = Source::read(&path, "board", "board file")?;
    let src = Source { path: &path, text: &text };
    let raw: RawBoardFile = src.parse()?;
    let b = raw.board.get_ref();

    if b.name.get_ref() != board {
        return Err(src.error(
            &b.name,
            "board.name",
            format!(
                "the board is named \"{}\" but its directory is \"{board}\"; they must match (samples refer to boards by directory name)",
                b.name.get_ref()
            ),
        ));
    }
    let cpus = *b.cpus.get_ref();
    if !(1..=MAX_VCPUS as i64).contains(&cpus) {
        return Err(src.error(&b.cpus, "board.cpus", format!("{cpus} CPUs: a board must have 1 to {MAX_VCPUS} CPUs")));
    }
    let gic = gic(&src, b)?;
    let ram = region(&src, &b.ram, "board.ram")?;
    let guest_ram = region(&src, &b.guest_ram, "board.guest_ram")?;
    if ram.base % MEMORY_ALIGN != 0 {
        return Err(src.error(
            &b.ram,
            "board.ram",
            format!("ram starts at {}: it must start on a 2 MiB boundary (boot loaders put the hypervisor at RAM base + 2 MiB)", error::addr(ram.base)),
        ));
    }
    if !ram.contains(&guest_ram) {
        return Err(src.error(
            &b.guest_ram,
            "board.guest_ram",
            format!(
                "guest_ram {} must lie inside ram {}",
                error::range(guest_ram.base, guest_ram.size),
                error::range(ram.base, ram.size)
            ),
        ));
    }
    if guest_ram.base % MEMORY_ALIGN != 0 || guest_ram.size % MEMORY_ALIGN != 0 {
        return Err(src.error(
            &b.guest_ram,
            "board.guest_ram",
            format!(
                "guest_ram {} must start and end on a 2 MiB boundary (domain memory is mapped in 2 MiB blocks)",
                error::range(guest_ram.base, guest_ram.size)
            ),
        ));
    }

    let mut profiles = Vec::new();
    for (name, p) in &raw.profiles {
        // Profile names become directory names under target/.
        if !crate::valid_domain_name(name) {
            return Err(src.error(&p.scheduler, format!("profiles.{name}"), "a profile name is 1 to 31 of a-z, 0-9, '_' and '-'"));
        }
        let scheduler = choose(&src, &p.scheduler, &format!("profiles.{name}.scheduler"), &[("null", Scheduler::Null)])?;
        let vwfi = choose(
            &src,
            &p.vwfi,
            &format!("profiles.{name}.vwfi"),
            &[("trap", Vwfi::Trap), ("native", Vwfi::Native)],
        )?;
        profiles.push(Profile { name: name.clone(), scheduler, vwfi, mix_clusters: p.mix_clusters });
    }
    let default_profile = b.default_profile.get_ref().clone();
    if !raw.profiles.contains_key(&default_profile) {
        let names: Vec<&String> = raw.profiles.keys().collect();
        return Err(src.error(
            &b.default_profile,
            "board.default_profile",
            format!(
                "no profile named \"{default_profile}\"; this board defines: {} (add a [profiles.{default_profile}] table or pick one of those)",
                error::quoted_list(&names)
            ),
        ));
    }

    let qemu = match &raw.qemu {
        None => None,
        Some(q) => {
            let q = q.get_ref();
            let at = q.bundle_addr.as_ref().map(|a| (*a.get_ref(), a));
            if let Some((at, span)) = at.filter(|&(at, _)| !ram.contains_addr(at) || guest_ram.contains_addr(at)) {
                return Err(src.error(
                    span,
                    "qemu.bundle_addr",
                    format!(
                        "bundle_addr {} must lie inside ram {} and outside guest_ram {} (domains would overwrite the bundle)",
                        error::addr(at),
                        error::range(ram.base, ram.size),
                        error::range(guest_ram.base, guest_ram.size)
                    ),
                ));
            }
            let dtb = match &q.dtb {
                None => None,
                Some(d) => {
                    let rel = d.get_ref();
                    let plain = |c: &str| !c.is_empty() && c != "." && c != ".." && c.chars().all(|ch| ch.is_ascii_alphanumeric() || "-_.,+".contains(ch));
                    if !rel.ends_with(".dtb") || !rel.split('/').all(plain) {
                        return Err(src.error(d, "qemu.dtb", format!("dtb {rel:?} must be a .dtb path inside the kernel package's dtb tree, such as \"xilinx/zynqmp-zcu102-rev1.0.dtb\"")));
                    }
                    Some(rel.clone())
                }
            };
            Some(QemuConfig { machine: q.machine.clone(), cpu: q.cpu.clone(), memory: q.memory.clone(), bundle_addr: at.map(|a| a.0), dtb })
        }
    };

    let board = Board {
        name: board.to_string(),
        arch: choose(
            &src,
            &b.arch,
            "board.arch",
            &[("aarch64", "aarch64"), ("armv7a", "armv7a")],
        )?
        .to_string(),
        cpus: cpus as u32,
        uart: *b.uart.get_ref(),
        uart_kind: match &b.uart_kind {
            None => UartKind::Pl011,
            Some(k) => choose(
                &src,
                k,
                "board.uart_kind",
                &[
                    ("pl011", UartKind::Pl011),
                    ("cadence", UartKind::Cadence),
                    ("scif", UartKind::Scif),
                    ("omap", UartKind::Omap),
                ],
            )?,
        },
        mpidr: mpidr(&src, b, cpus as usize)?,
        gic,
        ram,
        guest_ram,
        reserved: reserved(&src, b, ram, guest_ram, &raw.qemu)?,
        devicetrees: devicetrees(&src, &raw)?,
        devices: crate::devices::parse(&src, &b.devices, ram, crossbar(&src, b)?.as_ref())?,
        crossbar: crossbar(&src, b)?,
        secondary_boot: secondary_boot(&src, b)?,
        counter: counter(&src, b)?,
        boot: boot(&src, &raw)?,
        qemu,
        profiles,
        default_profile,
        path: path.clone(),
    };
    check_own_frames(&src, b, &board)?;
    Ok(board)
}

/// The frames the hypervisor drives: each where its map makes it device
/// memory (a 1 GiB block without RAM, below 4 GiB), page-aligned, and
/// apart from the others.
fn check_own_frames(src: &Source<'_>, b: &RawBoard, board: &Board) -> Result<(), ConfigError> {
    let frames = board.own_frames();
    let span = |field: &str| match field {
        "uart" => b.uart.span(),
        "gicd" => b.gicd.span(),
        "gicr" => b.gicr.as_ref().map_or(b.gic.span(), |s| s.span()),
        "gicc" => b.gicc.as_ref().map_or(b.gic.span(), |s| s.span()),
        "gich" => b.gich.as_ref().map_or(b.gic.span(), |s| s.span()),
        "gicv" => b.gicv.as_ref().map_or(b.gic.span(), |s| s.span()),
        "secondary_boot" => b.secondary_boot.as_ref().map_or(b.gic.span(), |s| s.span()),
        "crossbar" => b.crossbar.as_ref().map_or(b.gic.span(), |s| s.span()),
        _ => b.counter.as_ref().map_or(b.gic.span(), |s| s.span()),
    };
    let ram = (board.ram.base, board.ram.size);
    for (i, f) in frames.iter().enumerate() {
        let err = |msg: String| src.error_at(span(f.field), format!("board.{}", f.field), msg);
        let range = error::range(f.base, f.size);
        if f.base % 0x1000 != 0 {
            return Err(err(format!("{} {range} must start on a 4 KiB page", f.what)));
        }
        if !el2_map::is_device((f.base, f.size), ram) {
            return Err(err(format!(
                "{} {range} must lie below 4 GiB in a 1 GiB block without RAM (ram is {}): the hypervisor maps blocks that hold RAM as normal memory",
                f.what,
                error::range(ram.0, ram.1)
            )));
        }
        if let Some(o) = frames[..i].iter().find(|o| Region { base: o.base, size: o.size }.overlaps(&Region { base: f.base, size: f.size })) {
            return Err(err(format!("{} {range} overlaps {} {}", f.what, o.what, error::range(o.base, o.size))));
        }
    }
    Ok(())
}

impl Board {
    /// The board facts the boot bundle carries, with a profile's choices.
    pub fn desc(&self, vwfi: Vwfi, scheduler: Scheduler) -> BoardDesc {
        let (gic, gicr, (gicc, gich, gicv)) = match self.gic {
            Gic::V3 { gicr, .. } => (GicVersion::V3, gicr, (0, 0, 0)),
            Gic::V2 { gicc, gich, gicv, .. } => (GicVersion::V2, 0, (gicc, gich, gicv)),
        };
        BoardDesc {
            ncpus: self.cpus,
            vwfi,
            scheduler,
            uart_base: self.uart,
            gicd_base: self.gic.gicd(),
            gicr_base: gicr,
            ram_base: self.ram.base,
            ram_size: self.ram.size,
            gic,
            uart: self.uart_kind,
            gicc_base: gicc,
            gich_base: gich,
            gicv_base: gicv,
            aux_core_boot: self.secondary_boot.map_or(0, |s| s.aux_core_boot),
            realtime_counter: self.counter.map_or(0, |c| c.base),
            clksel_sys: self.counter.map_or(0, |c| c.clksel),
            crossbar_base: self.crossbar.as_ref().map_or(0, |c| c.base),
            // `crossbar()` bounds both to 16 bits.
            crossbar_lines: self.crossbar.as_ref().map_or(0, |c| c.lines as u16),
            crossbar_sources: self.crossbar.as_ref().map_or(0, |c| c.sources as u16),
        }
    }

    /// The frames the hypervisor drives (UART, GIC): no domain may be
    /// given any part of them.
    pub fn own_frames(&self) -> Vec<el2_map::Frame> {
        self.desc(Vwfi::Trap, Scheduler::Null).own_frames().into_iter().flatten().collect()
    }
}

/// The `gic` version and the frames it needs: each version's own, and
/// none of the other's.
fn gic(src: &Source<'_>, b: &RawBoard) -> Result<Gic, ConfigError> {
    #[derive(Clone, Copy)]
    enum V {
        Two,
        Three,
    }
    let v = choose(src, &b.gic, "board.gic", &[("v2", V::Two), ("v3", V::Three)])?;
    let frames = [("gicr", &b.gicr), ("gicc", &b.gicc), ("gich", &b.gich), ("gicv", &b.gicv)];
    let (needs, version): (&[&str], &str) = match v {
        V::Two => (&["gicc", "gich", "gicv"], "v2"),
        V::Three => (&["gicr"], "v3"),
    };
    // Armv7-A CPUs have no GICv3 system-register interface to drive.
    if matches!(v, V::Three) && b.arch.get_ref() == "armv7a" {
        return Err(src.error(
            &b.gic,
            "board.gic",
            "an armv7a board's GIC is driven as a GICv2 (gicd, gicc, gich, gicv): set gic = \"v2\"",
        ));
    }
    // What is missing first (the version names what it needs), then what
    // belongs to the other version.
    for (name, value) in frames {
        if needs.contains(&name) && value.is_none() {
            return Err(src.error(
                &b.gic,
                "board.gic",
                format!("a GIC{version} board needs `{name}` (the address of that frame) in [board]"),
            ));
        }
    }
    for (name, value) in frames {
        if let (false, Some(at)) = (needs.contains(&name), value) {
            return Err(src.error(
                at,
                &format!("board.{name}"),
                format!("`{name}` is not a GIC{version} frame; remove it or set `gic` to the version that has it"),
            ));
        }
    }
    let at = |x: &Option<Spanned<u64>>| x.as_ref().map_or(0, |s| *s.get_ref());
    Ok(match v {
        V::Two => Gic::V2 { gicd: *b.gicd.get_ref(), gicc: at(&b.gicc), gich: at(&b.gich), gicv: at(&b.gicv) },
        V::Three => Gic::V3 { gicd: *b.gicd.get_ref(), gicr: at(&b.gicr) },
    })
}

fn region(src: &Source<'_>, r: &Spanned<RawRegion>, field: &str) -> Result<Region, ConfigError> {
    let raw = r.get_ref();
    let region = Region { base: *raw.base.get_ref(), size: raw.size.get_ref().0 };
    if region.size == 0 {
        return Err(src.error(&raw.size, format!("{field}.size"), "size must be greater than 0"));
    }
    if region.base.checked_add(region.size).is_none() {
        return Err(src.error(r, field, "base + size overflows the 64-bit address space"));
    }
    Ok(region)
}

/// `mpidr`: one affinity per CPU, distinct, affinity fields only.
fn mpidr(src: &Source<'_>, b: &RawBoard, cpus: usize) -> Result<Vec<u64>, ConfigError> {
    let Some(list) = &b.mpidr else { return Ok((0..cpus as u64).collect()) };
    if list.get_ref().len() != cpus {
        return Err(src.error(
            list,
            "board.mpidr",
            format!("{} affinities for {cpus} CPUs: list one MPIDR per CPU, in device-tree order", list.get_ref().len()),
        ));
    }
    let mut out: Vec<u64> = Vec::new();
    for m in list.get_ref() {
        let v = *m.get_ref();
        if v & !MPIDR_AFF_MASK != 0 {
            return Err(src.error(m, "board.mpidr", format!("{v:#x} is not an affinity: only Aff3 (bits 39:32) and Aff2..Aff0 (bits 23:0) may be set")));
        }
        if out.contains(&v) {
            return Err(src.error(m, "board.mpidr", format!("affinity {v:#x} is listed twice")));
        }
        // A GICv3 SGI names its targets in a 16-bit list by Aff0 (without
        // the range selector, which the hypervisor does not use).
        if b.gic.get_ref() == "v3" && v & 0xff > 15 {
            return Err(src.error(m, "board.mpidr", format!("{v:#x}: Aff0 above 15 cannot be targeted by the hypervisor's GICv3 SGIs")));
        }
        out.push(v);
    }
    Ok(out)
}

fn secondary_boot(src: &Source<'_>, b: &RawBoard) -> Result<Option<SecondaryBoot>, ConfigError> {
    let Some(sb) = &b.secondary_boot else { return Ok(None) };
    let raw = sb.get_ref();
    choose(src, &raw.kind, "board.secondary_boot.kind", &[("ti-auxcoreboot", ())])?;
    armv7_only(src, b, sb, "board.secondary_boot")?;
    let base = *raw.base.get_ref();
    if base == 0 || base % 0x1000 != 0 {
        return Err(src.error(&raw.base, "board.secondary_boot.base", "WakeupGen's base is a page (4 KiB aligned, not 0)"));
    }
    // The AuxCoreBoot registers are WakeupGen's at +0x800.
    Ok(Some(SecondaryBoot { aux_core_boot: base }))
}

fn counter(src: &Source<'_>, b: &RawBoard) -> Result<Option<CounterSetup>, ConfigError> {
    let Some(c) = &b.counter else { return Ok(None) };
    let raw = c.get_ref();
    choose(src, &raw.kind, "board.counter.kind", &[("ti-realtime", ())])?;
    armv7_only(src, b, c, "board.counter")?;
    for (v, field) in [(&raw.base, "board.counter.base"), (&raw.clksel, "board.counter.clksel")] {
        if *v.get_ref() == 0 || *v.get_ref() % 4 != 0 {
            return Err(src.error(v, field, "a register address: 4-byte aligned, not 0"));
        }
    }
    Ok(Some(CounterSetup { base: *raw.base.get_ref(), clksel: *raw.clksel.get_ref() }))
}

/// TI DRA7's platform facts describe a 32-bit board.
fn armv7_only<T>(src: &Source<'_>, b: &RawBoard, at: &Spanned<T>, field: &str) -> Result<(), ConfigError> {
    if b.arch.get_ref() != "armv7a" {
        return Err(src.error(at, field, format!("this is TI DRA7's (J6's), an armv7a board's; this board is {}", b.arch.get_ref())));
    }
    Ok(())
}

/// `reserved`: firmware's memory; guest_ram, the hypervisor's image and
/// the QEMU bundle address must stay out of it.
fn crossbar(src: &Source<'_>, b: &RawBoard) -> Result<Option<Crossbar>, ConfigError> {
    let Some(c) = &b.crossbar else {
        return Ok(None);
    };
    let raw = c.get_ref();
    let lines = *raw.lines.get_ref();
    let most = hv_core::crossbar::MAX_LINES as u32;
    if !(1..=most).contains(&lines) {
        return Err(src.error(
            &raw.lines,
            "board.crossbar.lines",
            format!("{lines} crossbar lines: the hypervisor drives crossbars of 1 to {most}"),
        ));
    }
    if *raw.sources.get_ref() > u16::MAX as u32 {
        return Err(src.error(
            &raw.sources,
            "board.crossbar.sources",
            "more crossbar inputs than 65535",
        ));
    }
    if let Some(both) = raw.reserved.iter().find(|l| raw.skip.contains(l)) {
        return Err(src.error(
            c,
            "board.crossbar",
            format!(
                "line {both} is listed as both reserved and skipped: a line is one or the other"
            ),
        ));
    }
    if let Some(bad) = raw.reserved.iter().chain(&raw.skip).find(|&&l| l >= lines) {
        return Err(src.error(
            c,
            "board.crossbar",
            format!(
                "line {bad} is listed as reserved or skipped, but the crossbar has lines 0 to {}",
                lines - 1
            ),
        ));
    }
    if *raw.base.get_ref() == 0 || *raw.base.get_ref() % 4 != 0 {
        return Err(src.error(
            &raw.base,
            "board.crossbar.base",
            "the crossbar's registers are 4-byte aligned, and not at address 0",
        ));
    }
    let safe = *raw.safe.get_ref();
    if safe >= *raw.sources.get_ref() {
        return Err(src.error(
            &raw.safe,
            "board.crossbar.safe",
            format!("input {safe} is not one of the crossbar's {} inputs", raw.sources.get_ref()),
        ));
    }
    Ok(Some(Crossbar {
        base: *raw.base.get_ref(),
        lines,
        sources: *raw.sources.get_ref(),
        reserved: raw.reserved.clone(),
        skip: raw.skip.clone(),
        safe: safe as u16,
    }))
}

fn reserved(
    src: &Source<'_>,
    b: &RawBoard,
    ram: Region,
    guest_ram: Region,
    qemu: &Option<Spanned<RawQemu>>,
) -> Result<Vec<Reserved>, ConfigError> {
    let mut out = Vec::new();
    for (i, r) in b.reserved.iter().enumerate() {
        let raw = r.get_ref();
        let field = format!("board.reserved[{i}]");
        let region = Region { base: *raw.base.get_ref(), size: raw.size.get_ref().0 };
        if region.size == 0 || region.base.checked_add(region.size).is_none() {
            return Err(src.error(r, field, "a reserved region needs a size, and base + size must not overflow"));
        }
        let name = &raw.what;
        let clash = |what: &str, other: Region| {
            src.error(
                &b.reserved[i],
                format!("board.reserved[{i}]"),
                format!(
                    "{what} {} overlaps firmware's {name} {}: move it out of the reserved region",
                    error::range(other.base, other.size),
                    error::range(region.base, region.size)
                ),
            )
        };
        if guest_ram.overlaps(&region) {
            return Err(clash("guest_ram", guest_ram));
        }
        let image = Region { base: ram.base.saturating_add(crate::hv_image_offset(b.arch.get_ref())), size: crate::HV_IMAGE_MAX };
        if image.overlaps(&region) {
            return Err(clash("the hypervisor's image", image));
        }
        if let Some(at) = qemu.as_ref().and_then(|q| q.get_ref().bundle_addr.as_ref()) {
            if region.contains_addr(*at.get_ref()) {
                return Err(clash("qemu.bundle_addr", Region { base: *at.get_ref(), size: 1 }));
            }
        }
        out.push(Reserved { region, what: name.clone() });
    }
    Ok(out)
}

fn boot(src: &Source<'_>, raw: &RawBoardFile) -> Result<Option<crate::boot::Boot>, ConfigError> {
    use crate::boot::{Boot, BootDtb};
    let Some(b) = &raw.boot else { return Ok(None) };
    let device = crate::boot::parse_uboot_device(b.device.get_ref())
        .ok_or_else(|| src.error(&b.device, "boot.device", "write U-Boot's `<interface> <device>:<partition>`, e.g. \"mmc 0:1\""))?;
    let dtb = choose(src, &b.dtb, "boot.dtb", &[("u-boot", BootDtb::UBoot), ("image", BootDtb::Image)])?;
    if dtb == BootDtb::Image && !raw.devicetree.as_ref().is_some_and(|d| d.sources.get_ref().iter().any(|s| !s.get_ref().starts_with("qemu"))) {
        return Err(src.error(&b.dtb, "boot.dtb", "\"image\" carries the board's device tree: [devicetree] sources must name a debian-dtb: or linux-dts: tree"));
    }
    Ok(Some(Boot { device, dtb }))
}

fn devicetrees(src: &Source<'_>, raw: &RawBoardFile) -> Result<Vec<DtSource>, ConfigError> {
    let Some(dt) = &raw.devicetree else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    for s in dt.sources.get_ref() {
        let v = s.get_ref();
        let plain = |p: &str, ext: &str| {
            p.ends_with(ext)
                && p.split('/').all(|c| !c.is_empty() && c != "." && c != ".." && c.chars().all(|ch| ch.is_ascii_alphanumeric() || "-_.,+".contains(ch)))
        };
        let source = if v == "qemu" {
            if raw.qemu.is_none() {
                return Err(src.error(s, "devicetree.sources", "\"qemu\" needs a [qemu] table (the machine whose tree is dumped)"));
            }
            DtSource::Qemu
        } else if let Some(p) = v.strip_prefix("debian-dtb:").filter(|p| plain(p, ".dtb")) {
            DtSource::DebianDtb(p.to_string())
        } else if let Some(p) = v.strip_prefix("linux-dts:").filter(|p| plain(p, ".dts")) {
            DtSource::LinuxDts(p.to_string())
        } else {
            return Err(src.error(
                s,
                "devicetree.sources",
                format!("{v:?} is not a device-tree source: write \"qemu\", \"debian-dtb:<vendor>/<board>.dtb\" or \"linux-dts:<vendor>/<board>.dts\""),
            ));
        };
        out.push(source);
    }
    Ok(out)
}
