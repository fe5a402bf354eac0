//! The SMCCC calls a guest makes (HVC #0 or SMC #0): PSCI for its own vCPUs
//! and the machine, and the SMCCC architecture calls. Decoding and every
//! check that needs no hardware live here; the kernel carries the decision
//! out (starting, stopping, resetting).
//!
//! Guest registers are untrusted: a 32-bit call sees only the low halves,
//! targets are this domain's vCPUs (affinity 0.0.0.i) and nothing else,
//! and an entry point must lie in the domain's RAM.

use xen_abi::{psci, smccc};

/// A decoded call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    PsciVersion,
    PsciFeatures { fid: u32 },
    MigrateInfoType,
    CpuOn { target: u64, entry: u64, context: u64 },
    AffinityInfo { target: u64, level: u64 },
    CpuOff,
    SystemOff,
    SystemReset,
    SmcccVersion,
    /// Anything else: NOT_SUPPORTED (guests probe for features).
    Unknown { fid: u32 },
}

/// Decodes a call from x0..x3.
pub fn decode(x: [u64; 4]) -> Call {
    let fid = x[0] as u32;
    let arg = |i: usize| if fid & smccc::CONV_64 != 0 { x[i] } else { x[i] as u32 as u64 };
    match fid {
        psci::PSCI_VERSION => Call::PsciVersion,
        psci::PSCI_FEATURES => Call::PsciFeatures { fid: arg(1) as u32 },
        psci::MIGRATE_INFO_TYPE => Call::MigrateInfoType,
        psci::CPU_ON_32 | psci::CPU_ON_64 => Call::CpuOn { target: arg(1), entry: arg(2), context: arg(3) },
        psci::AFFINITY_INFO_32 | psci::AFFINITY_INFO_64 => Call::AffinityInfo { target: arg(1), level: arg(2) },
        psci::CPU_OFF => Call::CpuOff,
        psci::SYSTEM_OFF => Call::SystemOff,
        psci::SYSTEM_RESET => Call::SystemReset,
        smccc::SMCCC_VERSION => Call::SmcccVersion,
        _ => Call::Unknown { fid },
    }
}

/// PSCI_FEATURES: the calls served here.
pub fn features(fid: u32) -> i64 {
    match fid {
        psci::PSCI_VERSION | psci::PSCI_FEATURES | psci::CPU_OFF | psci::CPU_ON_32 | psci::CPU_ON_64
        | psci::AFFINITY_INFO_32 | psci::AFFINITY_INFO_64 | psci::SYSTEM_OFF | psci::SYSTEM_RESET
        | psci::MIGRATE_INFO_TYPE | smccc::SMCCC_VERSION => psci::SUCCESS,
        _ => psci::NOT_SUPPORTED,
    }
}

/// The answer to a call that needs no vCPU state, if it is one.
pub fn simple_answer(call: Call) -> Option<i64> {
    Some(match call {
        Call::PsciVersion => psci::VERSION_1_1 as i64,
        Call::PsciFeatures { fid } => features(fid),
        Call::MigrateInfoType => psci::TOS_NOT_PRESENT_MP,
        Call::SmcccVersion => smccc::VERSION_1_1 as i64,
        Call::Unknown { .. } => smccc::NOT_SUPPORTED,
        _ => return None,
    })
}

/// The vCPU an MPIDR names in a domain of `nvcpus` (vCPU i is 0.0.0.i).
pub fn vcpu_index(nvcpus: usize, mpidr: u64) -> Option<usize> {
    let aff = mpidr & 0xff_00ff_ffff;
    let i = (aff & 0xff) as usize;
    (aff >> 8 == 0 && i < nvcpus).then_some(i)
}

/// CPU_ON's checks before any state changes: the target vCPU's index, or
/// the PSCI error. `ram` is the domain's RAM as (IPA base, size).
pub fn cpu_on_target(nvcpus: usize, ram: (u64, u64), target: u64, entry: u64) -> Result<usize, i64> {
    let t = vcpu_index(nvcpus, target).ok_or(psci::INVALID_PARAMETERS)?;
    let in_ram = entry >= ram.0 && entry - ram.0 < ram.1;
    if !in_ram {
        return Err(psci::INVALID_ADDRESS);
    }
    Ok(t)
}

/// A vCPU's power state, as AFFINITY_INFO reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Power {
    On,
    OnPending,
    Off,
}

/// AFFINITY_INFO at `level` for `target`, given each vCPU's power state.
pub fn affinity_info(nvcpus: usize, target: u64, level: u64, state: impl Fn(usize) -> Power) -> i64 {
    if level != 0 {
        return psci::INVALID_PARAMETERS;
    }
    match vcpu_index(nvcpus, target).map(state) {
        None => psci::INVALID_PARAMETERS,
        Some(Power::On) => psci::AFFINITY_ON,
        Some(Power::OnPending) => psci::AFFINITY_ON_PENDING,
        Some(Power::Off) => psci::AFFINITY_OFF,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_32_bit_call_sees_only_the_low_halves() {
        let hi = 0xdead_beef_0000_0000;
        let c = decode([psci::CPU_ON_32 as u64, hi | 1, hi | 0x4000_0000, hi | 7]);
        assert_eq!(c, Call::CpuOn { target: 1, entry: 0x4000_0000, context: 7 });
        let c = decode([psci::CPU_ON_64 as u64, 1, hi | 0x4000_0000, 7]);
        assert_eq!(c, Call::CpuOn { target: 1, entry: hi | 0x4000_0000, context: 7 });
        // The function ID is x0's low 32 bits; whatever is above is ignored.
        assert_eq!(decode([hi | psci::PSCI_VERSION as u64, 0, 0, 0]), Call::PsciVersion);
    }

    #[test]
    fn targets_are_this_domains_vcpus_only() {
        assert_eq!(vcpu_index(2, 1), Some(1));
        assert_eq!(vcpu_index(2, 2), None);
        assert_eq!(vcpu_index(2, 0x100), None, "Aff1 names another cluster");
        assert_eq!(vcpu_index(2, 1 << 32 | 1), None, "Aff2");
        assert_eq!(vcpu_index(8, 0x8000_0007), Some(7), "MPIDR's U/MT bits do not matter");
        assert_eq!(cpu_on_target(2, (0x4000_0000, 0x100_0000), 7, 0x4000_0000), Err(psci::INVALID_PARAMETERS));
        assert_eq!(cpu_on_target(2, (0x4000_0000, 0x100_0000), 1, 0x4100_0000), Err(psci::INVALID_ADDRESS));
        assert_eq!(cpu_on_target(2, (0x4000_0000, 0x100_0000), 1, 0x40ff_fffc), Ok(1));
        assert_eq!(cpu_on_target(2, (0x4000_0000, 0x100_0000), 1, 0x3fff_fffc), Err(psci::INVALID_ADDRESS));
    }

    #[test]
    fn unknown_and_simple_calls() {
        assert_eq!(simple_answer(decode([0x86ff_0f0f, 0, 0, 0])), Some(smccc::NOT_SUPPORTED));
        assert_eq!(simple_answer(decode([psci::PSCI_FEATURES as u64, psci::CPU_SUSPEND_64 as u64, 0, 0])), Some(psci::NOT_SUPPORTED));
        assert_eq!(simple_answer(decode([psci::PSCI_FEATURES as u64, psci::CPU_ON_64 as u64, 0, 0])), Some(psci::SUCCESS));
        assert_eq!(simple_answer(decode([psci::CPU_OFF as u64, 0, 0, 0])), None);
        assert_eq!(affinity_info(2, 1, 1, |_| Power::On), psci::INVALID_PARAMETERS);
        assert_eq!(affinity_info(2, 1, 0, |i| if i == 1 { Power::OnPending } else { Power::Off }), psci::AFFINITY_ON_PENDING);
        assert_eq!(affinity_info(2, 5, 0, |_| Power::On), psci::INVALID_PARAMETERS);
    }
}
