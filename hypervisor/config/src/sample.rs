//! `samples/<name>/system.toml`: which board and profile a system runs on,
//! and its domains.

use std::path::{Path, PathBuf};

use hv_core::bundle::Action;
use serde::Deserialize;
use toml::Spanned;

use crate::board::{load_board, Board, Profile};
use crate::error::{self, ConfigError, Source};
use crate::size::Size;
use crate::{validate, Region};

/// What the caller knows that the files do not.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Built-in test guests that `image = "guest:<name>"` may name.
    pub known_guests: Vec<String>,
    /// Use this board profile instead of the sample's (or the board's default).
    pub profile_override: Option<String>,
    /// Build for this board instead of the sample's (a board of the same
    /// machine family: the sample is validated against it in full).
    pub board_override: Option<String>,
}

/// Where a domain's image (or initrd) comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageRef {
    /// `guest:<name>`: a test guest built from `hypervisor/guests`.
    Guest(String),
    /// A file; relative paths in the sample are joined to the sample's directory.
    File(PathBuf),
    /// `debian:<package>`: a kernel from Debian's archive (arm64 or armhf, as the board), fetched at build time.
    Debian(String),
    /// `initramfs:<name>`: a busybox initramfs built from the sample's
    /// `initramfs/<name>/` directory (its files go to the archive's root).
    Initramfs(PathBuf),
}

/// What runs in a domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A bare-metal image entered at `load_offset`.
    Bare,
    /// An arm64 Linux `Image`, booted with a device tree and an initrd.
    Linux,
}

/// A host device assigned to one domain (mapped at the same address).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PassthroughDev {
    /// The device's registers, as the board's device tree gives them.
    pub reg: Region,
    /// Its SPI as a GIC INTID (32..=255), if it interrupts.
    pub irq: Option<u32>,
    /// Device-tree `compatible` of the node the guest sees.
    pub compatible: String,
    /// The device masters memory (DMA): its domain must be direct-mapped.
    pub dma: bool,
    /// On a board with TI's IRQ crossbar: the input its interrupt arrives
    /// on; `irq` is then the GIC line the build routed it to.
    pub crossbar_input: Option<u16>,
}

impl Domain {
    /// Guest physical base of the domain's RAM.
    pub fn ram_ipa(&self) -> u64 {
        if self.direct_map {
            self.memory.base
        } else {
            xen_abi::guest_layout::RAM0_BASE
        }
    }
}

impl PassthroughDev {
    /// The whole 4 KiB pages holding the registers: what stage 2 maps (the
    /// rest of those pages goes to the domain too).
    pub fn pages(&self) -> Region {
        self.reg.pages()
    }
}

/// A validated domain, its memory placed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Domain {
    pub name: String,
    pub vcpus: u8,
    /// pCPU of each vCPU; `vcpus` entries.
    pub pcpus: Vec<u8>,
    /// Host physical memory, base resolved (given or placed).
    pub memory: Region,
    pub image: ImageRef,
    pub vpl011: bool,
    pub system_controller: bool,
    pub on_poweroff: Action,
    pub on_reboot: Action,
    pub on_crash: Action,
    /// Offset into the domain's RAM where the image is loaded and entered.
    pub load_offset: u64,
    pub kind: Kind,
    /// Linux: the initial ramdisk.
    pub initrd: Option<ImageRef>,
    /// Linux: the kernel command line.
    pub bootargs: String,
    pub passthrough: Vec<PassthroughDev>,
    /// RAM at guest address == host address (for DMA without an IOMMU).
    pub direct_map: bool,
    /// Real-time share on an `rtds` cpupool: (budget, period) in microseconds.
    pub rtds: Option<(u32, u32)>,
    /// Xen's guest ABI, with these limits (`[domain.xen]`).
    pub xen: Option<XenLimits>,
    /// Its PV devices as a frontend, each as libxl would lay it out
    /// (domain ids are domain index + 1).
    pub pv: Vec<pv_backend::toolstack::DeviceSpec>,
    /// xenstore directories under its home that a peer may write too:
    /// (relative path, peer's domain index).
    pub xen_shares: Vec<(String, usize)>,
}

/// Per-domain limits of the Xen guest ABI, reserved at boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XenLimits {
    pub grant_frames: u16,
    pub event_channels: u16,
    pub xenstore: hv_core::xenstore::Quota,
}

/// A validated sample: board, chosen profile and domains.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    /// The sample's directory name.
    pub name: String,
    /// The system.toml this came from.
    pub path: PathBuf,
    pub board: Board,
    pub profile: Profile,
    pub domains: Vec<Domain>,
    /// Extra QEMU arguments for running this sample on a QEMU board.
    pub qemu_args: Vec<String>,
    pub cpupools: Vec<crate::Cpupool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSample {
    pub system: Spanned<RawSystem>,
    /// Extra QEMU arguments (devices a sample passes through, say).
    pub qemu: Option<RawQemu>,
    #[serde(default)]
    pub cpupool: Vec<Spanned<crate::cpupool::RawCpupool>>,
    #[serde(default)]
    pub domain: Vec<Spanned<RawDomain>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawQemu {
    pub args: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSystem {
    pub board: Spanned<String>,
    pub profile: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDomain {
    pub name: Spanned<String>,
    pub vcpus: Option<Spanned<i64>>,
    pub pcpus: Spanned<Vec<Spanned<i64>>>,
    pub memory: Spanned<Size>,
    pub memory_base: Option<Spanned<u64>>,
    pub image: Spanned<String>,
    pub devices: Option<Spanned<Vec<Spanned<String>>>>,
    pub system_controller: Option<Spanned<bool>>,
    pub on_poweroff: Option<Spanned<String>>,
    pub on_reboot: Option<Spanned<String>>,
    pub on_crash: Option<Spanned<String>>,
    pub load_offset: Option<Spanned<u64>>,
    pub kind: Option<Spanned<String>>,
    pub initrd: Option<Spanned<String>>,
    pub bootargs: Option<Spanned<String>>,
    pub passthrough: Option<Spanned<Vec<Spanned<RawPassthrough>>>>,
    pub direct_map: Option<Spanned<bool>>,
    pub cpupool: Option<Spanned<String>>,
    pub budget: Option<Spanned<String>>,
    pub period: Option<Spanned<String>>,
    pub xen: Option<Spanned<RawXen>>,
    pub vkbd: Option<Vec<Spanned<RawPv>>>,
    pub vfb: Option<Vec<Spanned<RawPv>>>,
    pub vsnd: Option<Vec<Spanned<RawPv>>>,
    pub vdispl: Option<Vec<Spanned<RawPv>>>,
}

/// A PV device of a domain: the domain that serves it, and its options in
/// xl.cfg's device-string syntax (for vsnd, the card's list of items).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPv {
    pub backend: Spanned<String>,
    pub options: Option<Spanned<RawOptions>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum RawOptions {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawXen {
    pub grant_frames: Option<Spanned<i64>>,
    pub event_channels: Option<Spanned<i64>>,
    pub xenstore_nodes: Option<Spanned<i64>>,
    pub xenstore_watches: Option<Spanned<i64>>,
    pub xenstore_transactions: Option<Spanned<i64>>,
    /// Directories of its xenstore home a peer domain may write as well.
    pub share: Option<Vec<Spanned<RawShare>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawShare {
    pub path: Spanned<String>,
    pub peer: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPassthrough {
    /// A device of the board's catalog, by name: the rest comes from there.
    pub device: Option<Spanned<String>>,
    pub base: Option<Spanned<u64>>,
    pub size: Option<Spanned<Size>>,
    pub irq: Option<Spanned<i64>>,
    pub compatible: Option<Spanned<String>>,
    pub dma: Option<Spanned<bool>>,
}

/// Whether `name` is a usable domain name: 1..=31 bytes of `[a-z0-9_-]`.
pub fn valid_domain_name(name: &str) -> bool {
    (1..hv_core::bundle::NAME_LEN).contains(&name.len())
        && name.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'-')
}

/// How errors name a domain: `domain "crasher"`, or `domain[1]` (0-based)
/// while it has no valid name.
pub(crate) fn domain_label(index: usize, name: Option<&str>) -> String {
    match name {
        Some(n) if valid_domain_name(n) => format!("domain \"{n}\""),
        _ => format!("domain[{index}]"),
    }
}

/// Reads and validates a sample's `system.toml` and the board it names.
pub fn load_sample(sample_toml: &Path, bsp_dir: &Path, opts: &LoadOptions) -> Result<Sample, ConfigError> {
    let text = Source::read(sample_toml, "system", "sample file")?;
    parse_sample(sample_toml, &text, bsp_dir, opts)
}

/// Validates a `system.toml`'s text (read from `sample_toml`, which errors
/// name and relative image paths start from) against the boards in `bsp_dir`.
pub fn parse_sample(sample_toml: &Path, text: &str, bsp_dir: &Path, opts: &LoadOptions) -> Result<Sample, ConfigError> {
    let src = Source { path: sample_toml, text };
    let raw: RawSample = src.parse()?;
    let sys = raw.system.get_ref();

    let board_name = opts.board_override.as_ref().unwrap_or(sys.board.get_ref());
    let board_file = bsp_dir.join(board_name).join("board.toml");
    let plain = !board_name.is_empty() && !board_name.starts_with('.') && !board_name.contains(['/', '\\']);
    if !plain || !board_file.is_file() {
        return Err(src.error(
            &sys.board,
            "system.board",
            format!(
                "no board \"{board_name}\": {} does not exist; boards in {}: {}",
                board_file.display(),
                bsp_dir.display(),
                error::quoted_list(&available_boards(bsp_dir))
            ),
        ));
    }
    let board = load_board(bsp_dir, board_name)?;
    let unknown_profile = |name: &str| {
        format!(
            "board \"{board_name}\" has no profile \"{name}\"; it defines: {} (see {})",
            error::quoted_list(&board.profile_names()),
            board.path.display()
        )
    };
    let profile = if let Some(name) = &opts.profile_override {
        board
            .profile(name)
            .ok_or_else(|| src.error_nowhere("profile (override)", unknown_profile(name)))?
    } else if let Some(name) = &sys.profile {
        board
            .profile(name.get_ref())
            .ok_or_else(|| src.error(name, "system.profile", unknown_profile(name.get_ref())))?
    } else {
        board.profile(&board.default_profile).expect("load_board checks default_profile")
    }
    .clone();

    let dir = match sample_toml.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let cpupools = crate::cpupool::pools(&src, &raw.cpupool, &board, &profile)?;
    let domains = validate::domains(&src, &raw, &board, &profile, opts, &dir, &cpupools)?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .or_else(|| std::fs::canonicalize(&dir).ok()?.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let qemu_args = raw.qemu.as_ref().map(|q| q.args.clone()).unwrap_or_default();
    Ok(Sample { name, path: sample_toml.to_path_buf(), board, profile, domains, qemu_args, cpupools })
}

fn available_boards(bsp_dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(bsp_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join("board.toml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The 1-based line of domain `index`'s `image` value in the sample file, for
/// errors found after loading (encoding); `None` if the file changed since.
pub(crate) fn image_line(sample_toml: &Path, index: usize) -> Option<usize> {
    let text = std::fs::read_to_string(sample_toml).ok()?;
    let raw: RawSample = toml::from_str(&text).ok()?;
    let span = raw.domain.get(index)?.get_ref().image.span();
    Some(error::line_of(&text, span.start))
}
