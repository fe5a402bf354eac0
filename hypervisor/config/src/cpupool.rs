//! Cpupools: named sets of pCPUs with their own scheduler, as in Xen. pCPUs
//! in no pool form the default pool, run by the profile's null scheduler;
//! an `rtds` pool lets several vCPUs share its pCPUs, each domain getting
//! `budget` of CPU time every `period`.

use std::collections::HashMap;

use serde::Deserialize;
use toml::Spanned;

use crate::board::{Board, Profile};
use crate::error::{ConfigError, Source};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCpupool {
    pub name: Spanned<String>,
    pub pcpus: Spanned<Vec<Spanned<i64>>>,
    pub scheduler: Spanned<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolScheduler {
    Null,
    Rtds,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cpupool {
    pub name: String,
    pub pcpus: Vec<u8>,
    pub scheduler: PoolScheduler,
}

pub(crate) fn pools(src: &Source<'_>, raw: &[Spanned<RawCpupool>], board: &Board, profile: &Profile) -> Result<Vec<Cpupool>, ConfigError> {
    let mut out: Vec<Cpupool> = Vec::new();
    let mut owner: HashMap<i64, String> = HashMap::new();
    for (i, p) in raw.iter().enumerate() {
        let p = p.get_ref();
        let label = format!("cpupool \"{}\"", p.name.get_ref());
        if out.iter().any(|q| &q.name == p.name.get_ref()) {
            return Err(src.error(&p.name, format!("cpupool[{i}].name"), format!("{label} is defined twice")));
        }
        let scheduler = match p.scheduler.get_ref().as_str() {
            "null" => PoolScheduler::Null,
            "rtds" => PoolScheduler::Rtds,
            other => {
                return Err(src.error(
                    &p.scheduler,
                    format!("{label}.scheduler"),
                    format!("unknown scheduler \"{other}\"; expected \"null\" or \"rtds\""),
                ))
            }
        };
        let mut pcpus = Vec::new();
        for c in p.pcpus.get_ref() {
            let n = *c.get_ref();
            if n < 0 || n >= i64::from(board.cpus) {
                return Err(src.error(c, format!("{label}.pcpus"), format!("pCPU {n} does not exist (board \"{}\" has {} CPUs)", board.name, board.cpus)));
            }
            if let Some(other) = owner.insert(n, p.name.get_ref().clone()) {
                return Err(src.error(c, format!("{label}.pcpus"), format!("pCPU {n} is already in cpupool \"{other}\"")));
            }
            if let Some(msg) = crate::board::cluster_clash(board, profile, &pcpus, n as usize) {
                return Err(src.error(c, format!("{label}.pcpus"), msg));
            }
            pcpus.push(n as u8);
        }
        if pcpus.is_empty() {
            return Err(src.error(&p.pcpus, format!("{label}.pcpus"), "a cpupool needs at least one pCPU"));
        }
        out.push(Cpupool { name: p.name.get_ref().clone(), pcpus, scheduler });
    }
    Ok(out)
}

/// A duration for `budget`/`period`: "10ms", "500us" or a number of
/// microseconds; the result is in microseconds.
pub(crate) fn duration_us(v: &str) -> Result<u32, String> {
    let (num, scale) = if let Some(n) = v.strip_suffix("ms") {
        (n, 1000)
    } else if let Some(n) = v.strip_suffix("us") {
        (n, 1)
    } else {
        (v, 1)
    };
    let n: u64 = num.trim().parse().map_err(|_| format!("\"{v}\" is not a duration; write e.g. \"10ms\" or \"500us\""))?;
    let us = n.checked_mul(scale).filter(|&u| u > 0 && u <= u32::MAX as u64).ok_or(format!("\"{v}\" is out of range"))?;
    Ok(us as u32)
}

#[cfg(test)]
mod tests {
    use super::duration_us;

    #[test]
    fn durations() {
        assert_eq!(duration_us("10ms"), Ok(10_000));
        assert_eq!(duration_us("500us"), Ok(500));
        assert_eq!(duration_us("250"), Ok(250));
        assert!(duration_us("0ms").is_err());
        assert!(duration_us("fast").is_err());
    }
}
