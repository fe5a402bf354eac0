//! Encodes a validated [`Sample`] and its images into the boot bundle.

use hv_core::bundle::{encode, BoardDesc, DomainDesc, FLAG_SYSTEM_CONTROLLER, FLAG_VPL011, MAX_VCPUS};

use crate::error::{self, ConfigError};
use crate::sample::{domain_label, image_line};
use crate::Sample;

/// Encodes `sample` into a boot bundle. `images[i]` is domain `i`'s image
/// (resolved by the caller from [`crate::ImageRef`]); each must fit in the
/// domain's memory above its `load_offset`.
pub fn encode_bundle(sample: &Sample, images: &[Vec<u8>]) -> Result<Vec<u8>, ConfigError> {
    if images.len() != sample.domains.len() {
        return Err(ConfigError::new(
            &sample.path,
            None,
            "domain",
            format!("{} domains but {} images were given to encode", sample.domains.len(), images.len()),
        ));
    }
    let mut descs = Vec::new();
    for (i, (d, image)) in sample.domains.iter().zip(images).enumerate() {
        let room = d.memory.size.saturating_sub(d.load_offset);
        if image.len() as u64 > room {
            return Err(ConfigError::new(
                &sample.path,
                image_line(&sample.path, i),
                format!("{}.image", domain_label(i, Some(&d.name))),
                format!(
                    "the image is {} bytes but only {} bytes ({}) fit: memory {} minus load_offset {}; raise memory or shrink the image",
                    image.len(),
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
        descs.push(DomainDesc {
            name: &d.name,
            vcpus: d.vcpus,
            pins,
            flags,
            on_poweroff: d.on_poweroff,
            on_reboot: d.on_reboot,
            on_crash: d.on_crash,
            mem_pa: d.memory.base,
            mem_size: d.memory.size,
            load_offset: d.load_offset,
            image,
        });
    }
    let board = BoardDesc {
        ncpus: sample.board.cpus,
        vwfi: sample.profile.vwfi,
        scheduler: sample.profile.scheduler,
        uart_base: sample.board.uart,
        gicd_base: sample.board.gicd,
        gicr_base: sample.board.gicr,
        ram_base: sample.board.ram.base,
        ram_size: sample.board.ram.size,
    };
    encode(&board, &descs)
        .map_err(|e| ConfigError::new(&sample.path, None, "bundle", format!("cannot encode the boot bundle: {e:?}")))
}
