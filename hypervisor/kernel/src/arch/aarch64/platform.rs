//! A board's own bring-up: none on aarch64, where TF-A (or QEMU) sets up
//! the counter and starts CPUs through PSCI.

use hv_core::bundle::Bundle;

pub fn init(_bundle: &Bundle<'_>) {}
