//! The rules for a sample's domains: names, CPU pinning, memory, images,
//! devices, the system controller and lifecycle actions. Each broken rule is
//! reported at the line of the value that breaks it.

use std::collections::HashMap;
use std::path::Path;

use hv_core::bundle::{Action, Scheduler, MAX_DOMAINS, MAX_VCPUS, NAME_LEN};
use toml::Spanned;

use crate::board::{choose, Board, Profile};
use crate::error::{self, ConfigError, Source};
use crate::placement;
use crate::sample::{domain_label, valid_domain_name, Domain, ImageRef, LoadOptions, RawDomain, RawSample};
use crate::{Region, KNOWN_DEVICES, LOAD_ALIGN, MEMORY_ALIGN};

const ACTIONS: [(&str, Action); 3] =
    [("destroy", Action::Destroy), ("restart", Action::Restart), ("preserve", Action::Preserve)];

pub(crate) fn domains(
    src: &Source<'_>,
    raw: &RawSample,
    board: &Board,
    profile: &Profile,
    opts: &LoadOptions,
    dir: &Path,
    pools: &[crate::Cpupool],
) -> Result<Vec<Domain>, ConfigError> {
    if raw.domain.is_empty() {
        return Err(src.error_nowhere("domain", "the sample defines no domains; add at least one [[domain]] table"));
    }
    if raw.domain.len() > MAX_DOMAINS {
        return Err(src.error(
            &raw.domain[MAX_DOMAINS],
            format!("domain[{MAX_DOMAINS}]"),
            format!("{} domains defined; the hypervisor supports at most {MAX_DOMAINS}", raw.domain.len()),
        ));
    }

    // Names first: every later error names the domain by them.
    let mut first_use: HashMap<&str, usize> = HashMap::new();
    for (i, d) in raw.domain.iter().enumerate() {
        let name = d.get_ref().name.get_ref().as_str();
        let field = format!("domain[{i}].name");
        if !valid_domain_name(name) {
            return Err(src.error(
                &d.get_ref().name,
                field,
                format!(
                    "invalid domain name \"{name}\": use 1 to {} characters from a-z, 0-9, '_' and '-'",
                    NAME_LEN - 1
                ),
            ));
        }
        if let Some(&j) = first_use.get(name) {
            let line = error::line_of(src.text, raw.domain[j].get_ref().name.span().start);
            return Err(src.error(
                &d.get_ref().name,
                field,
                format!("duplicate domain name \"{name}\": domain[{j}] (line {line}) already uses it; names must be unique"),
            ));
        }
        first_use.insert(name, i);
    }

    let mut pin_owner: HashMap<i64, (usize, usize)> = HashMap::new();
    // Microseconds of budget per period promised on each real-time pCPU.
    let mut rt_load: HashMap<i64, f64> = HashMap::new();
    let mut controller: Option<usize> = None;
    let mut out = Vec::new();
    for (i, d) in raw.domain.iter().enumerate() {
        let d = d.get_ref();
        let label = domain_label(i, Some(d.name.get_ref()));
        let f = |key: &str| format!("{label}.{key}");

        let vcpus = match &d.vcpus {
            None => 1,
            Some(v) => {
                let n = *v.get_ref();
                if !(1..=MAX_VCPUS as i64).contains(&n) {
                    return Err(src.error(v, f("vcpus"), format!("{n} vCPUs: a domain has 1 to {MAX_VCPUS} vCPUs")));
                }
                n
            }
        };

        let pins = d.pcpus.get_ref();
        if pins.len() as i64 != vcpus {
            return Err(src.error(
                &d.pcpus,
                f("pcpus"),
                format!(
                    "{} pCPU(s) listed for {vcpus} vCPU(s); list exactly one pCPU per vCPU (vcpus = {vcpus}, default 1)",
                    pins.len()
                ),
            ));
        }
        let pool = match &d.cpupool {
            None => None,
            Some(name) => Some(pools.iter().find(|p| &p.name == name.get_ref()).ok_or_else(|| {
                let known: Vec<&str> = pools.iter().map(|p| p.name.as_str()).collect();
                src.error(name, f("cpupool"), format!("no cpupool \"{}\"; defined: {}", name.get_ref(), error::quoted_list(&known)))
            })?),
        };
        let rtds = match pool {
            Some(p) if p.scheduler == crate::PoolScheduler::Rtds => {
                let need = |v: &Option<Spanned<String>>, key: &str| -> Result<u32, ConfigError> {
                    let v = v.as_ref().ok_or_else(|| {
                        src.error(&raw.domain[i], f(key), format!("a domain in rtds cpupool \"{}\" needs `{key}` (e.g. \"10ms\")", p.name))
                    })?;
                    crate::cpupool::duration_us(v.get_ref()).map_err(|m| src.error(v, f(key), m))
                };
                let budget = need(&d.budget, "budget")?;
                let period = need(&d.period, "period")?;
                let at = d.budget.as_ref().expect("checked by need");
                if budget > period {
                    return Err(src.error(at, f("budget"), format!("budget {budget} us exceeds period {period} us")));
                }
                Some((budget, period))
            }
            _ => {
                for (key, v) in [("budget", &d.budget), ("period", &d.period)] {
                    if let Some(v) = v {
                        return Err(src.error(v, f(key), format!("`{key}` is for domains in an rtds cpupool")));
                    }
                }
                None
            }
        };
        let mut pcpus = Vec::new();
        for (vcpu, pin) in pins.iter().enumerate() {
            let p = *pin.get_ref();
            if p < 0 || p >= i64::from(board.cpus) {
                return Err(src.error(
                    pin,
                    f("pcpus"),
                    format!(
                        "pCPU {p} does not exist: board \"{}\" has {} CPUs, numbered 0 to {}",
                        board.name,
                        board.cpus,
                        board.cpus - 1
                    ),
                ));
            }
            let home = pools.iter().find(|q| q.pcpus.contains(&(p as u8)));
            match (pool, home) {
                (Some(want), Some(have)) if want.name != have.name => {
                    return Err(src.error(pin, f("pcpus"), format!("pCPU {p} is in cpupool \"{}\", not \"{}\"", have.name, want.name)))
                }
                (Some(want), None) => {
                    return Err(src.error(pin, f("pcpus"), format!("pCPU {p} is not in cpupool \"{}\" (its pCPUs: {:?})", want.name, want.pcpus)))
                }
                (None, Some(have)) if have.scheduler == crate::PoolScheduler::Rtds => {
                    return Err(src.error(pin, f("pcpus"), format!("pCPU {p} belongs to rtds cpupool \"{}\"; set cpupool = \"{}\" with a budget and period", have.name, have.name)))
                }
                _ => {}
            }
            if let Some((budget, period)) = rtds {
                let load = rt_load.entry(p).or_insert(0.0);
                *load += budget as f64 / period as f64;
                if *load > 1.0 + 1e-9 {
                    return Err(src.error(
                        d.budget.as_ref().expect("rtds has a budget"),
                        f("budget"),
                        format!("pCPU {p} is over-committed: the budgets of its vCPUs add up to {:.0} % of it", *load * 100.0),
                    ));
                }
            }
            if rtds.is_none() && profile.scheduler == Scheduler::Null {
                if let Some(&(other, other_vcpu)) = pin_owner.get(&p) {
                    let free: Vec<String> = (0..i64::from(board.cpus))
                        .filter(|c| !pin_owner.contains_key(c))
                        .map(|c| c.to_string())
                        .collect();
                    let free = if free.is_empty() { "none".to_string() } else { free.join(", ") };
                    let msg = if other == i {
                        format!(
                            "pCPU {p} is already used by vCPU {other_vcpu} of this domain; the null scheduler runs exactly one vCPU per pCPU (free pCPUs: {free})"
                        )
                    } else {
                        let other_label = domain_label(other, Some(raw.domain[other].get_ref().name.get_ref()));
                        format!(
                            "pCPU {p} is already used by vCPU {other_vcpu} of {other_label}; the null scheduler runs exactly one vCPU per pCPU, so {other_label} and {label} cannot share it (free pCPUs: {free})"
                        )
                    };
                    return Err(src.error(pin, f("pcpus"), msg));
                }
                pin_owner.insert(p, (i, vcpu));
            }
            if let Some(msg) = crate::board::cluster_clash(board, profile, &pcpus, p as usize) {
                return Err(src.error(pin, f("pcpus"), msg));
            }
            pcpus.push(p as u8);
        }

        let memory = d.memory.get_ref().0;
        if memory == 0 || memory % MEMORY_ALIGN != 0 {
            return Err(src.error(
                &d.memory,
                f("memory"),
                format!(
                    "memory must be a non-zero multiple of 2 MiB (domain memory is mapped in 2 MiB blocks), not {}",
                    error::size(memory)
                ),
            ));
        }
        if let Some(b) = &d.memory_base {
            if *b.get_ref() % MEMORY_ALIGN != 0 {
                return Err(src.error(
                    b,
                    f("memory_base"),
                    format!("memory_base {} is not 2 MiB aligned", error::addr(*b.get_ref())),
                ));
            }
        }

        let load_offset = d.load_offset.as_ref().map_or(0, |o| *o.get_ref());
        if let Some(o) = &d.load_offset {
            if load_offset % LOAD_ALIGN != 0 || load_offset >= memory {
                return Err(src.error(
                    o,
                    f("load_offset"),
                    format!(
                        "load_offset {} must be 4 KiB aligned and below the domain's memory ({})",
                        error::addr(load_offset),
                        error::size(memory)
                    ),
                ));
            }
        }

        let image = image(src, &d.image, &f("image"), opts, dir, &board.arch)?;
        let linux = crate::linux::domain(src, board, d, &f, dir, &image)?;

        let mut vpl011 = true;
        if let Some(devs) = &d.devices {
            vpl011 = false;
            for dev in devs.get_ref() {
                match dev.get_ref().as_str() {
                    "vpl011" => vpl011 = true,
                    other => {
                        return Err(src.error(
                            dev,
                            f("devices"),
                            format!("unknown device \"{other}\"; known devices: {}", error::quoted_list(KNOWN_DEVICES)),
                        ))
                    }
                }
            }
        }

        let system_controller = d.system_controller.as_ref().is_some_and(|s| *s.get_ref());
        if system_controller {
            if let Some(first) = controller {
                let first_label = domain_label(first, Some(raw.domain[first].get_ref().name.get_ref()));
                return Err(src.error(
                    d.system_controller.as_ref().expect("set"),
                    f("system_controller"),
                    format!("{first_label} is already the system controller; at most one domain may be"),
                ));
            }
            controller = Some(i);
        }

        let action = |v: &Option<Spanned<String>>, key: &str, default: Action| match v {
            None => Ok(default),
            Some(v) => choose(src, v, &f(key), &ACTIONS),
        };
        let on_poweroff = action(&d.on_poweroff, "on_poweroff", Action::Destroy)?;
        let on_reboot = action(&d.on_reboot, "on_reboot", Action::Restart)?;
        let on_crash = action(&d.on_crash, "on_crash", Action::Destroy)?;

        let xen = match &d.xen {
            None => None,
            Some(x) => Some(xen_limits(src, x, &f)?),
        };

        out.push(Domain {
            name: d.name.get_ref().clone(),
            vcpus: vcpus as u8,
            pcpus,
            memory: Region { base: d.memory_base.as_ref().map_or(0, |b| *b.get_ref()), size: memory },
            image,
            vpl011,
            system_controller,
            on_poweroff,
            on_reboot,
            on_crash,
            load_offset,
            kind: linux.kind,
            initrd: linux.initrd,
            bootargs: linux.bootargs,
            passthrough: linux.passthrough,
            direct_map: linux.direct_map,
            rtds,
            xen,
            pv: Vec::new(),
            xen_shares: Vec::new(),
        });
    }

    pv_devices(src, raw, &mut out)?;
    xenstore_pools(src, raw, &out)?;
    crate::linux::route_crossbar(src, &raw.domain, board, &mut out)?;
    // After placing: a direct-mapped domain's RAM is at its host address.
    place_memory(src, &raw.domain, board, &mut out)?;
    crate::linux::check_passthrough_exclusive(src, &raw.domain, board, &out)?;
    Ok(out)
}

/// Every domain's PV devices: each names a Xen-enabled backend domain
/// other than itself, and its options parse as xl.cfg's would.
fn pv_devices(src: &Source<'_>, raw: &RawSample, out: &mut [Domain]) -> Result<(), ConfigError> {
    let names: Vec<String> = out.iter().map(|d| d.name.clone()).collect();
    let xen: Vec<bool> = out.iter().map(|d| d.xen.is_some()).collect();
    for (i, rd) in raw.domain.iter().enumerate() {
        let d = rd.get_ref();
        let label = domain_label(i, Some(&names[i]));
        for (kind, list) in [("vkbd", &d.vkbd), ("vfb", &d.vfb), ("vsnd", &d.vsnd), ("vdispl", &d.vdispl)] {
            for (n, dev) in list.iter().flatten().enumerate() {
                let field = format!("{label}.{kind}[{n}]");
                if !xen[i] {
                    return Err(src.error(dev, &field, format!("a PV device needs Xen's guest ABI: add [domain.xen] to {label}")));
                }
                let be = dev.get_ref().backend.get_ref();
                let j = names.iter().position(|n| n == be).ok_or_else(|| {
                    src.error(&dev.get_ref().backend, format!("{field}.backend"), format!("no domain \"{be}\"; domains: {}", error::quoted_list(&names)))
                })?;
                if j == i || !xen[j] {
                    let why = if j == i { "a domain cannot serve its own device".to_string() } else { format!("{be} has no [domain.xen]: it cannot run a backend") };
                    return Err(src.error(&dev.get_ref().backend, format!("{field}.backend"), why));
                }
                let options: Vec<String> = match dev.get_ref().options.as_ref().map(|o| o.get_ref()) {
                    None => vec![String::new()],
                    Some(crate::sample::RawOptions::One(s)) => vec![s.clone()],
                    Some(crate::sample::RawOptions::Many(v)) => v.clone(),
                };
                let spec = pv_config::xl::device_spec(kind, &options, i as u16 + 1, j as u16 + 1, n as u32).map_err(|e| match &dev.get_ref().options {
                    Some(o) => src.error(o, format!("{field}.options"), e.msg),
                    None => src.error(dev, format!("{field}.options"), e.msg),
                })?;
                out[i].pv.push(spec);
            }
        }
        let shares = d.xen.as_ref().and_then(|x| x.get_ref().share.as_ref());
        for (n, sh) in shares.into_iter().flatten().enumerate() {
            let field = format!("{label}.xen.share[{n}]");
            let (path, peer) = (sh.get_ref().path.get_ref(), sh.get_ref().peer.get_ref());
            let ok = !path.is_empty() && !path.starts_with('/') && !path.ends_with('/') && !path.contains("//") && path.len() < 48
                && path.bytes().all(|c| c.is_ascii_alphanumeric() || b"/_-".contains(&c));
            if !ok {
                return Err(src.error(&sh.get_ref().path, format!("{field}.path"), format!("\"{path}\" is not a relative xenstore path (letters, digits, '/', '_', '-'; under 48 bytes)")));
            }
            let j = names.iter().position(|n| n == peer).filter(|&j| j != i && xen[j]).ok_or_else(|| {
                src.error(&sh.get_ref().peer, format!("{field}.peer"), format!("\"{peer}\" is not another domain with [domain.xen]; domains: {}", error::quoted_list(&names)))
            })?;
            out[i].xen_shares.push((path.clone(), j));
        }
    }
    Ok(())
}

/// The store's pools are shared: the per-domain quotas must add up to no
/// more than they hold, so each quota is a reservation no other domain can
/// take away.
fn xenstore_pools(src: &Source<'_>, raw: &RawSample, out: &[Domain]) -> Result<(), ConfigError> {
    use hv_core::xenstore::{HV_NODES, MAX_NODES, MAX_TX, MAX_WATCHES};
    let xen: Vec<(usize, hv_core::xenstore::Quota)> = out.iter().enumerate().filter_map(|(i, d)| Some((i, d.xen?.xenstore))).collect();
    let Some(&(last, _)) = xen.last() else { return Ok(()) };
    let sum = |f: fn(&hv_core::xenstore::Quota) -> usize| xen.iter().map(|(_, q)| f(q)).sum::<usize>();
    let checks = [
        ("xenstore_nodes", sum(|q| q.nodes.into()), MAX_NODES - HV_NODES),
        ("xenstore_watches", sum(|q| q.watches.into()), MAX_WATCHES),
        ("xenstore_transactions", sum(|q| q.transactions.into()), MAX_TX),
    ];
    for (key, total, pool) in checks {
        if total > pool {
            let at = raw.domain[last].get_ref().xen.as_ref().expect("a domain with [domain.xen]");
            return Err(src.error(
                at,
                format!("{}.xen.{key}", domain_label(last, Some(&out[last].name))),
                format!("the domains' {key} add up to {total}, more than the store's {pool}: lower some"),
            ));
        }
    }
    Ok(())
}

/// Grant frames and event channels a domain gets unless it says.
const DEFAULT_GRANT_FRAMES: u16 = 4;
const DEFAULT_EVENT_CHANNELS: u16 = 64;

fn xen_limits(src: &Source<'_>, x: &Spanned<crate::sample::RawXen>, f: &dyn Fn(&str) -> String) -> Result<crate::sample::XenLimits, ConfigError> {
    use hv_core::bundle::{MAX_EVENT_CHANNELS, MAX_GRANT_FRAMES};
    let x = x.get_ref();
    let limit = |v: &Option<Spanned<i64>>, key: &str, max: u16, default: u16, what: &str| match v {
        None => Ok(default),
        Some(v) if (1..=i64::from(max)).contains(v.get_ref()) => Ok(*v.get_ref() as u16),
        Some(v) => Err(src.error(v, f(&format!("xen.{key}")), format!("{key} must be 1 to {max} ({what}), not {}", v.get_ref()))),
    };
    let q = hv_core::xenstore::Quota::DEFAULT;
    Ok(crate::sample::XenLimits {
        grant_frames: limit(&x.grant_frames, "grant_frames", MAX_GRANT_FRAMES, DEFAULT_GRANT_FRAMES, "512 grants per frame")?,
        event_channels: limit(&x.event_channels, "event_channels", MAX_EVENT_CHANNELS, DEFAULT_EVENT_CHANNELS, "ports the domain may bind")?,
        xenstore: hv_core::xenstore::Quota {
            nodes: limit(&x.xenstore_nodes, "xenstore_nodes", hv_core::xenstore::MAX_NODES as u16 / 2, q.nodes, "nodes it may own in the store")?,
            watches: limit(&x.xenstore_watches, "xenstore_watches", 32, q.watches.into(), "watches it may hold")? as u8,
            transactions: limit(&x.xenstore_transactions, "xenstore_transactions", 4, q.transactions.into(), "transactions it may have open")? as u8,
        },
    })
}

fn image(
    src: &Source<'_>,
    value: &Spanned<String>,
    field: &str,
    opts: &LoadOptions,
    dir: &Path,
    arch: &str,
) -> Result<ImageRef, ConfigError> {
    let v = value.get_ref();
    if let Some(pkg) = v.strip_prefix("debian:") {
        let known: Vec<&str> = crate::linux::DEBIAN_KERNELS.iter().filter(|k| k.1 == arch).map(|k| k.0).collect();
        if known.contains(&pkg) {
            return Ok(ImageRef::Debian(pkg.to_string()));
        }
        let other = crate::linux::DEBIAN_KERNELS.iter().find(|k| k.0 == pkg);
        let why = match other {
            Some((_, a)) => format!("Debian kernel package \"{pkg}\" is for {a} boards; this board is {arch}"),
            None => format!("unknown Debian kernel package \"{pkg}\""),
        };
        return Err(src.error(value, field, format!("{why}; known for {arch}: {}", error::quoted_list(&known))));
    }
    if let Some(guest) = v.strip_prefix("guest:") {
        if opts.known_guests.iter().any(|g| g == guest) {
            return Ok(ImageRef::Guest(guest.to_string()));
        }
        return Err(src.error(
            value,
            field,
            format!(
                "unknown built-in guest \"{guest}\"; known guests: {}",
                error::quoted_list(&opts.known_guests)
            ),
        ));
    }
    let path = dir.join(v);
    if v.is_empty() || !path.is_file() {
        return Err(src.error(
            value,
            field,
            format!(
                "image file \"{v}\" not found (looked for {}); a path is relative to the sample's directory, or write \"guest:<name>\" for a built-in guest ({})",
                path.display(),
                error::quoted_list(&opts.known_guests)
            ),
        ));
    }
    Ok(ImageRef::File(path))
}

/// Checks domains with `memory_base` (inside guest RAM, no overlap), then
/// places the others first-fit in file order.
fn place_memory(
    src: &Source<'_>,
    raw: &[Spanned<RawDomain>],
    board: &Board,
    domains: &mut [Domain],
) -> Result<(), ConfigError> {
    let gr = board.guest_ram;
    let mut taken: Vec<(usize, Region)> = Vec::new();
    for (i, d) in domains.iter().enumerate() {
        let Some(base) = &raw[i].get_ref().memory_base else { continue };
        let label = domain_label(i, Some(&d.name));
        let m = d.memory;
        if !gr.contains(&m) {
            return Err(src.error(
                base,
                format!("{label}.memory_base"),
                format!(
                    "memory {} ({}) lies outside board \"{}\"'s guest_ram {}",
                    error::range(m.base, m.size),
                    error::size(m.size),
                    board.name,
                    error::range(gr.base, gr.size)
                ),
            ));
        }
        if let Some((j, other)) = taken.iter().find(|(_, r)| r.overlaps(&m)) {
            return Err(src.error(
                base,
                format!("{label}.memory_base"),
                format!(
                    "memory {} overlaps {}'s memory {}",
                    error::range(m.base, m.size),
                    domain_label(*j, Some(&domains[*j].name)),
                    error::range(other.base, other.size)
                ),
            ));
        }
        taken.push((i, m));
    }
    let mut regions: Vec<Region> = taken.iter().map(|(_, r)| *r).collect();
    for (i, d) in domains.iter_mut().enumerate() {
        if raw[i].get_ref().memory_base.is_some() {
            continue;
        }
        match placement::first_fit(gr, &regions, d.memory.size, MEMORY_ALIGN) {
            Some(base) => {
                d.memory.base = base;
                regions.push(d.memory);
            }
            None => {
                let largest = placement::gaps(gr, &regions, MEMORY_ALIGN).iter().map(|g| g.size).max().unwrap_or(0);
                return Err(src.error(
                    &raw[i].get_ref().memory,
                    format!("{}.memory", domain_label(i, Some(&d.name))),
                    format!(
                        "no room for {} in board \"{}\"'s guest_ram {} ({}): the largest free gap left by earlier domains is {}; reduce this domain's memory or give the others less",
                        error::size(d.memory.size),
                        board.name,
                        error::range(gr.base, gr.size),
                        error::size(gr.size),
                        error::size(largest)
                    ),
                ));
            }
        }
    }
    Ok(())
}
