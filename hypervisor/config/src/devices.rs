//! The devices a board offers for passthrough (`[[board.devices]]`):
//! registers, interrupts, whether they master memory, and the IOMMU
//! streams (SMMU stream IDs, IPMMU uTLBs) they master it through. A
//! sample passes one through by name (`device = "du"`); on a board with a
//! catalog, a region given by address must belong to one of its devices.
//! `cargo xtask check-board` checks each entry against the board's device
//! trees.

use serde::Deserialize;
use toml::Spanned;

use crate::board::{Crossbar, Region};
use crate::error::{self, ConfigError, Source};

/// A device of the board's, as its device tree describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoardDevice {
    pub name: String,
    /// The device tree node's first `compatible`.
    pub compatible: String,
    /// Register regions, in the node's `reg` order.
    pub regs: Vec<Region>,
    /// GIC INTIDs (SPI number + 32), in the node's `interrupts` order.
    pub irqs: Vec<u32>,
    /// On a board with TI's IRQ crossbar: the crossbar inputs its
    /// interrupts arrive on (the tree's `interrupts` under the crossbar).
    /// Passing the device through routes them to free GIC lines.
    pub crossbar_inputs: Vec<u16>,
    /// It masters memory (DMA).
    pub dma: bool,
    /// (IOMMU's register base, stream ID or uTLB) of each `iommus` entry.
    pub iommus: Vec<(u64, u32)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDevice {
    name: Spanned<String>,
    compatible: Spanned<String>,
    /// `[[base, size], ...]`
    regs: Spanned<Vec<(u64, u64)>>,
    #[serde(default)]
    irqs: Option<Spanned<Vec<i64>>>,
    /// Crossbar inputs, on a board with TI's IRQ crossbar.
    #[serde(default)]
    crossbar_inputs: Option<Spanned<Vec<i64>>>,
    #[serde(default)]
    dma: bool,
    /// `[[iommu base, id], ...]`
    #[serde(default)]
    iommus: Vec<(u64, u32)>,
}

/// The largest GIC INTID of an SPI.
const LAST_GIC_SPI: i64 = 1019;
/// Devices a board may list.
const MAX_DEVICES: usize = 64;

pub(crate) fn parse(src: &Source<'_>, raw: &[Spanned<RawDevice>], ram: Region, crossbar: Option<&Crossbar>) -> Result<Vec<BoardDevice>, ConfigError> {
    if raw.len() > MAX_DEVICES {
        return Err(src.error(&raw[MAX_DEVICES], format!("board.devices[{MAX_DEVICES}]"), format!("at most {MAX_DEVICES} devices")));
    }
    let mut out: Vec<BoardDevice> = Vec::new();
    for (i, r) in raw.iter().enumerate() {
        let d = r.get_ref();
        let field = |f: &str| format!("board.devices[{i}].{f}");
        let name = d.name.get_ref();
        if !crate::valid_domain_name(name) {
            return Err(src.error(&d.name, field("name"), "a device name is 1 to 31 of a-z, 0-9, '_' and '-'"));
        }
        if out.iter().any(|o| &o.name == name) {
            return Err(src.error(&d.name, field("name"), format!("device \"{name}\" is listed twice")));
        }
        if d.compatible.get_ref().is_empty() {
            return Err(src.error(&d.compatible, field("compatible"), "give the device tree node's first `compatible`"));
        }
        let mut regs = Vec::new();
        for &(base, size) in d.regs.get_ref() {
            let reg = Region { base, size };
            if size == 0 || base.checked_add(size).is_none_or(|e| e > 1 << 39) {
                return Err(src.error(&d.regs, field("regs"), format!("{}: a region needs a size and must lie below 512 GiB", error::range(base, size))));
            }
            if reg.overlaps(&ram) {
                return Err(src.error(&d.regs, field("regs"), format!("{} overlaps the board's RAM", error::range(base, size))));
            }
            regs.push(reg);
        }
        if regs.is_empty() {
            return Err(src.error(&d.regs, field("regs"), "a device has at least one register region"));
        }
        let mut irqs = Vec::new();
        if let Some(list) = &d.irqs {
            for &irq in list.get_ref() {
                if !(32..=LAST_GIC_SPI).contains(&irq) {
                    return Err(src.error(list, field("irqs"), format!("{irq} is not an SPI's GIC INTID (32..={LAST_GIC_SPI}: the SPI number + 32)")));
                }
                irqs.push(irq as u32);
            }
        }
        let mut crossbar_inputs = Vec::new();
        if let Some(list) = &d.crossbar_inputs {
            let Some(xbar) = crossbar else {
                return Err(src.error(list, field("crossbar_inputs"), "the board has no IRQ crossbar (board.crossbar): give the device's GIC INTIDs in `irqs`"));
            };
            for &input in list.get_ref() {
                if !(0..i64::from(xbar.sources)).contains(&input) {
                    return Err(src.error(list, field("crossbar_inputs"), format!("{input} is not one of the crossbar's inputs (0..{})", xbar.sources)));
                }
                crossbar_inputs.push(input as u16);
            }
        }
        out.push(BoardDevice { name: name.clone(), compatible: d.compatible.get_ref().clone(), regs, irqs, crossbar_inputs, dma: d.dma, iommus: d.iommus.clone() });
    }
    Ok(out)
}
