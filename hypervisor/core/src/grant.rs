//! Grant tables, v1 (`grant_table.h`), without the hardware: checking a
//! guest's grant entry when another domain maps it, the mapper's table of
//! what it holds (its "maptrack", with a quota fixed at boot), and what
//! must be torn down when either side goes away.
//!
//! The grant entries live in memory the granting guest writes at any
//! time: the kernel reaches them through [`GrantEntries`], whose reads are
//! single atomic loads and whose flag updates are compare-and-swap. An
//! entry is read once per operation and every value in it is checked
//! (type, grantee, read-only, frame inside the granter's RAM). While a
//! grant is mapped the hypervisor keeps GTF_reading/GTF_writing set, so a
//! well-behaved frontend cannot revoke it; a hostile one that clears the
//! flags anyway changes nothing: the mapping stays until it is unmapped or
//! either domain stops, and the page stays the granter's.

use crate::evtchn::DomId;

/// GNTST_* status codes (returned in the op's status field).
pub mod status {
    pub const OKAY: i16 = 0;
    pub const GENERAL_ERROR: i16 = -1;
    pub const BAD_DOMAIN: i16 = -2;
    pub const BAD_GNTREF: i16 = -3;
    pub const BAD_HANDLE: i16 = -4;
    pub const PERMISSION_DENIED: i16 = -8;
    pub const BAD_PAGE: i16 = -9;
    pub const BAD_COPY_ARG: i16 = -10;
    pub const EAGAIN: i16 = -12;
    pub const NO_SPACE: i16 = -13;
}

/// GTF_* bits of an entry's flags.
pub use xen_abi::hypercall::grant_entry::{GTF_PERMIT_ACCESS, GTF_READING, GTF_READONLY, GTF_TYPE_MASK, GTF_WRITING};

/// GNTMAP_* flags of a map request.
pub const GNTMAP_HOST_MAP: u32 = 1 << 1;
pub const GNTMAP_READONLY: u32 = 1 << 2;

/// A v1 grant entry: flags u16, domid u16, frame u32 (a GFN of the granter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub flags: u16,
    pub domid: DomId,
    pub frame: u32,
}

impl Entry {
    pub fn from_u64(v: u64) -> Self {
        Entry { flags: v as u16, domid: (v >> 16) as u16, frame: (v >> 32) as u32 }
    }
}

/// A granting domain's entries, in memory it writes concurrently.
pub trait GrantEntries {
    /// Entries in the table (what the domain's grant frames hold).
    fn count(&self) -> u32;
    /// One atomic 8-byte load of entry `gref` (< `count`).
    fn load(&self, gref: u32) -> u64;
    /// Compare-and-swap of the whole entry `gref` (so a guest that rewrote
    /// its frame or grantee since `old` was read and checked makes it fail);
    /// the entry found on failure.
    fn cas(&mut self, gref: u32, old: u64, new: u64) -> Result<(), u64>;
}

/// Grant entries in plain memory that nobody else writes: a test harness
/// (host tests, fuzz targets), never a guest's table.
pub struct PlainEntries<const N: usize> {
    words: [u64; N],
    count: u32,
}

impl<const N: usize> PlainEntries<N> {
    /// The first `N` of `words` as entries 0, 1, ...
    pub fn new(words: &[u64]) -> Self {
        let mut w = [0; N];
        let count = words.len().min(N);
        w[..count].copy_from_slice(&words[..count]);
        PlainEntries { words: w, count: count as u32 }
    }

    pub fn words(&self) -> &[u64] {
        &self.words[..self.count as usize]
    }

    /// The granting guest writes entry `gref` (ignored past the table).
    pub fn write(&mut self, gref: usize, word: u64) {
        if gref < self.count as usize {
            self.words[gref] = word;
        }
    }
}

impl<const N: usize> GrantEntries for PlainEntries<N> {
    fn count(&self) -> u32 {
        self.count
    }
    fn load(&self, gref: u32) -> u64 {
        self.words.get(gref as usize).copied().unwrap_or(0)
    }
    fn cas(&mut self, gref: u32, old: u64, new: u64) -> Result<(), u64> {
        let Some(e) = self.words.get_mut(gref as usize) else { return Err(0) };
        if *e != old {
            return Err(*e);
        }
        *e = new;
        Ok(())
    }
}

/// A mapping a domain holds of another's page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub granter: DomId,
    pub gref: u32,
    /// The granter's frame (GFN) the grant named when it was mapped.
    pub frame: u32,
    pub writable: bool,
}

/// One domain's maptrack: the grants it has mapped, by handle.
pub struct MapTrack<const N: usize> {
    /// `Slot`s rather than `Option<Mapping>`: an empty table is all
    /// zeros, so the kernel's static maptracks live in .bss.
    slots: [Slot; N],
    quota: usize,
    used: usize,
}

#[derive(Clone, Copy)]
struct Slot {
    used: bool,
    map: Mapping,
}

const EMPTY_SLOT: Slot = Slot { used: false, map: Mapping { granter: 0, gref: 0, frame: 0, writable: false } };

impl Slot {
    fn get(&self) -> Option<Mapping> {
        self.used.then_some(self.map)
    }
}

/// How often a flag update may lose a race with the guest before the map
/// gives up with EAGAIN (the guest's retry, not our loop).
const CAS_TRIES: u32 = 4;

impl<const N: usize> MapTrack<N> {
    pub const fn new(quota: usize) -> Self {
        MapTrack { slots: [EMPTY_SLOT; N], quota, used: 0 }
    }

    pub fn used(&self) -> usize {
        self.used
    }

    /// Sets the quota (at a domain's boot: a static table starts at 0).
    pub fn set_quota(&mut self, quota: usize) {
        self.quota = quota.min(N);
    }

    pub fn get(&self, handle: u32) -> Option<Mapping> {
        self.slots.get(handle as usize).and_then(Slot::get)
    }

    /// Live mappings of `granter`'s grant `gref`, writable ones apart.
    fn holds(&self, granter: DomId, gref: u32) -> (usize, usize) {
        let mut all = (0, 0);
        for m in self.slots.iter().filter_map(Slot::get).filter(|m| m.granter == granter && m.gref == gref) {
            all.0 += 1;
            all.1 += m.writable as usize;
        }
        all
    }

    /// Handles of every mapping of `granter`'s pages: what the kernel tears
    /// down (stage-2 entries, then `unmap`) before `granter` restarts.
    pub fn of_granter(&self, granter: DomId) -> impl Iterator<Item = u32> + '_ {
        self.slots.iter().enumerate().filter(move |(_, s)| s.get().is_some_and(|m| m.granter == granter)).map(|(h, _)| h as u32)
    }
}

/// What a map_grant_ref asks for (from the guest's request).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapRequest {
    pub granter: DomId,
    pub gref: u32,
    /// GNTMAP_* flags.
    pub flags: u32,
}

/// GNTTABOP_map_grant_ref by `mapper` of `granter`'s grant `gref`.
/// `ram_frames` is the granter's RAM as a GFN range; `allowed` the
/// description's verdict (a backend may map only the frontends it serves,
/// while they are connected). Returns the handle and the frame to map.
pub fn map<const N: usize>(
    track: &mut MapTrack<N>,
    mapper: DomId,
    req: MapRequest,
    entries: &mut impl GrantEntries,
    ram_frames: core::ops::Range<u64>,
    allowed: bool,
) -> Result<(u32, u32), i16> {
    let MapRequest { granter, gref, flags } = req;
    if !allowed || mapper == granter {
        return Err(status::BAD_DOMAIN);
    }
    if flags & GNTMAP_HOST_MAP == 0 {
        // Device and application maps are PV-only; Arm backends host-map.
        return Err(status::GENERAL_ERROR);
    }
    if gref >= entries.count() {
        return Err(status::BAD_GNTREF);
    }
    if track.used >= track.quota {
        return Err(status::NO_SPACE);
    }
    let handle = track.slots.iter().position(|s| !s.used).ok_or(status::NO_SPACE)?;
    let writable = flags & GNTMAP_READONLY == 0;
    let mut tries = 0;
    let entry = loop {
        // Read once per attempt; every field checked from this copy, and
        // the flags set only if the whole entry is still this copy.
        let raw = entries.load(gref);
        let e = Entry::from_u64(raw);
        if e.flags & GTF_TYPE_MASK != GTF_PERMIT_ACCESS || e.domid != mapper {
            return Err(status::PERMISSION_DENIED);
        }
        if writable && e.flags & GTF_READONLY != 0 {
            return Err(status::PERMISSION_DENIED);
        }
        if !ram_frames.contains(&u64::from(e.frame)) {
            return Err(status::BAD_PAGE);
        }
        let want = e.flags | GTF_READING | if writable { GTF_WRITING } else { 0 };
        match entries.cas(gref, raw, (raw & !0xffff) | u64::from(want)) {
            Ok(()) => break e,
            Err(_) if tries + 1 < CAS_TRIES => tries += 1,
            Err(_) => return Err(status::EAGAIN),
        }
    };
    track.slots[handle] = Slot { used: true, map: Mapping { granter, gref, frame: entry.frame, writable } };
    track.used += 1;
    Ok((handle as u32, entry.frame))
}

/// The `gref` of a mapping made without a grant: a legacy fbif backend
/// mapping its frontend's frames (XENMEM_add_to_physmap_range with
/// gmfn_foreign), which the description allowed.
pub const FOREIGN: u32 = u32::MAX;

/// Records a foreign mapping of `granter`'s frame `frame` (the caller has
/// checked that it is the granter's RAM and that the description allows
/// it). Returns its handle; the maptrack quota holds as for grants.
pub fn map_foreign<const N: usize>(track: &mut MapTrack<N>, granter: DomId, frame: u32) -> Result<u32, i16> {
    if track.used >= track.quota {
        return Err(status::NO_SPACE);
    }
    let handle = track.slots.iter().position(|s| !s.used).ok_or(status::NO_SPACE)?;
    track.slots[handle] = Slot { used: true, map: Mapping { granter, gref: FOREIGN, frame, writable: true } };
    track.used += 1;
    Ok(handle as u32)
}

/// GNTTABOP_unmap_grant_ref of `handle` (the caller removes the stage-2
/// entry first). The entry's GTF_reading/GTF_writing are dropped once no
/// mapping of that grant by this domain remains (`entries` is `None` when
/// the granter is gone). Returns what was unmapped.
pub fn unmap<const N: usize>(
    track: &mut MapTrack<N>,
    handle: u32,
    entries: Option<&mut dyn GrantEntries>,
) -> Result<Mapping, i16> {
    let Some(slot) = track.slots.get_mut(handle as usize) else { return Err(status::BAD_HANDLE) };
    let Some(m) = slot.get() else { return Err(status::BAD_HANDLE) };
    slot.used = false;
    track.used -= 1;
    let (left, writers) = track.holds(m.granter, m.gref);
    if let Some(entries) = entries.filter(|e| m.gref < e.count()) {
        let clear = if left == 0 { GTF_READING | GTF_WRITING } else if writers == 0 { GTF_WRITING } else { 0 };
        for _ in 0..CAS_TRIES {
            let raw = entries.load(m.gref);
            let flags = raw as u16;
            if flags & clear == 0 || entries.cas(m.gref, raw, raw & !u64::from(clear)).is_ok() {
                break;
            }
        }
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn table(words: &[u64]) -> PlainEntries<8> {
        PlainEntries::new(words)
    }

    fn grant(domid: DomId, frame: u32, flags: u16) -> u64 {
        u64::from(flags) | u64::from(domid) << 16 | u64::from(frame) << 32
    }

    const RAM: core::ops::Range<u64> = 0x40000..0x41000;

    #[test]
    fn a_backend_maps_what_its_frontend_granted_and_nothing_else() {
        let mut t = table(&[0, grant(0, 0x40010, GTF_PERMIT_ACCESS), grant(0, 0x40011, GTF_PERMIT_ACCESS | GTF_READONLY), grant(7, 0x40012, GTF_PERMIT_ACCESS), grant(0, 0x9000, GTF_PERMIT_ACCESS)]);
        let mut mt = MapTrack::<8>::new(4);
        let (h, frame) = map(&mut mt, 0, MapRequest { granter: 1, gref: 1, flags: GNTMAP_HOST_MAP }, &mut t, RAM, true).unwrap();
        assert_eq!(frame, 0x40010);
        assert_eq!(t.words()[1] as u16 & (GTF_READING | GTF_WRITING), GTF_READING | GTF_WRITING, "in use: not revocable");
        assert_eq!(map(&mut mt, 0, MapRequest { granter: 1, gref: 2, flags: GNTMAP_HOST_MAP }, &mut t, RAM, true), Err(status::PERMISSION_DENIED), "read-only grant, writable map");
        assert!(map(&mut mt, 0, MapRequest { granter: 1, gref: 2, flags: GNTMAP_HOST_MAP | GNTMAP_READONLY }, &mut t, RAM, true).is_ok());
        assert_eq!(map(&mut mt, 0, MapRequest { granter: 1, gref: 3, flags: GNTMAP_HOST_MAP }, &mut t, RAM, true), Err(status::PERMISSION_DENIED), "granted to domain 7");
        assert_eq!(map(&mut mt, 0, MapRequest { granter: 1, gref: 4, flags: GNTMAP_HOST_MAP }, &mut t, RAM, true), Err(status::BAD_PAGE), "a frame outside its RAM");
        assert_eq!(map(&mut mt, 0, MapRequest { granter: 1, gref: 0, flags: GNTMAP_HOST_MAP }, &mut t, RAM, true), Err(status::PERMISSION_DENIED), "an empty entry");
        assert_eq!(map(&mut mt, 0, MapRequest { granter: 1, gref: 5, flags: GNTMAP_HOST_MAP }, &mut t, RAM, true), Err(status::BAD_GNTREF));
        assert_eq!(map(&mut mt, 0, MapRequest { granter: 1, gref: 1, flags: GNTMAP_HOST_MAP }, &mut t, RAM, false), Err(status::BAD_DOMAIN), "not its frontend");
        assert_eq!(mt.of_granter(1).count(), 2);
        unmap(&mut mt, h, Some(&mut t)).unwrap();
        assert_eq!(t.words()[1] as u16, GTF_PERMIT_ACCESS, "revocable again");
        assert_eq!(unmap(&mut mt, h, Some(&mut t)), Err(status::BAD_HANDLE));
        assert_eq!(unmap(&mut mt, u32::MAX, None), Err(status::BAD_HANDLE));
    }

    #[test]
    fn the_maptrack_quota_holds() {
        let mut t = table(&[grant(0, 0x40010, GTF_PERMIT_ACCESS); 4]);
        let mut mt = MapTrack::<8>::new(2);
        assert!(map(&mut mt, 0, MapRequest { granter: 1, gref: 0, flags: GNTMAP_HOST_MAP }, &mut t, RAM, true).is_ok());
        assert!(map(&mut mt, 0, MapRequest { granter: 1, gref: 1, flags: GNTMAP_HOST_MAP }, &mut t, RAM, true).is_ok());
        assert_eq!(map(&mut mt, 0, MapRequest { granter: 1, gref: 2, flags: GNTMAP_HOST_MAP }, &mut t, RAM, true), Err(status::NO_SPACE));
    }

    /// A guest that rewrites its entry on every read: the map gives up
    /// with EAGAIN after a few tries instead of spinning.
    struct Racing(u64, u32);

    impl GrantEntries for Racing {
        fn count(&self) -> u32 {
            1
        }
        fn load(&self, _: u32) -> u64 {
            self.0
        }
        fn cas(&mut self, _: u32, _: u64, _: u64) -> Result<(), u64> {
            self.1 += 1;
            Err(0)
        }
    }

    /// A guest that, right after the hypervisor read its entry, ends the
    /// grant and reuses the ref for another frame with the same flags.
    struct Reused {
        word: u64,
        next: Option<u64>,
    }

    impl GrantEntries for Reused {
        fn count(&self) -> u32 {
            1
        }
        fn load(&self, _: u32) -> u64 {
            self.word
        }
        fn cas(&mut self, _: u32, old: u64, new: u64) -> Result<(), u64> {
            if let Some(n) = self.next.take() {
                self.word = n;
            }
            if self.word != old {
                return Err(self.word);
            }
            self.word = new;
            Ok(())
        }
    }

    #[test]
    fn a_ref_reused_between_the_check_and_the_flags_maps_the_new_frame_only() {
        let mut r = Reused { word: grant(0, 0x40010, GTF_PERMIT_ACCESS), next: Some(grant(0, 0x40020, GTF_PERMIT_ACCESS)) };
        let mut mt = MapTrack::<8>::new(2);
        let (_, frame) = map(&mut mt, 0, MapRequest { granter: 1, gref: 0, flags: GNTMAP_HOST_MAP }, &mut r, RAM, true).unwrap();
        assert_eq!(frame, 0x40020, "the frame the entry holds when it is marked in use");
        assert_eq!(Entry::from_u64(r.word).frame, 0x40020);
    }

    #[test]
    fn a_racing_guest_gets_eagain_not_a_stall() {
        let mut r = Racing(grant(0, 0x40010, GTF_PERMIT_ACCESS), 0);
        let mut mt = MapTrack::<8>::new(2);
        assert_eq!(map(&mut mt, 0, MapRequest { granter: 1, gref: 0, flags: GNTMAP_HOST_MAP }, &mut r, RAM, true), Err(status::EAGAIN));
        assert_eq!(r.1, CAS_TRIES);
        assert_eq!(mt.used(), 0);
    }

    proptest! {
        /// Whatever the granter writes and whatever is asked, a mapping
        /// exists only for an entry granting the mapper access to a frame
        /// in the granter's RAM, writable only if the grant allows it; the
        /// in-use flags are set exactly while a mapping of the grant lives.
        #[test]
        fn mappings_match_what_was_granted(entries in prop::collection::vec((0u16..32, 0u16..2, 0x3fff0u32..0x41010), 1..8), ops in prop::collection::vec((any::<bool>(), 0u32..10, any::<bool>()), 1..60)) {
            // Entries near what a frontend writes: flags with any of the
            // low bits, this or another grantee, frames in and out of RAM.
            let words: Vec<u64> = entries.iter().map(|&(f, d, fr)| grant(d, fr, f)).collect();
            let mut t = table(&words);
            let mut mt = MapTrack::<16>::new(6);
            let mut live: Vec<(u32, Mapping)> = Vec::new();
            let mut touched = vec![false; words.len()];
            for (is_map, n, readonly) in ops {
                if is_map {
                    let before = Entry::from_u64(t.words().get(n as usize).copied().unwrap_or(0));
                    let flags = GNTMAP_HOST_MAP | if readonly { GNTMAP_READONLY } else { 0 };
                    if let Ok((h, frame)) = map(&mut mt, 0, MapRequest { granter: 1, gref: n, flags }, &mut t, RAM, true) {
                        prop_assert_eq!(before.flags & GTF_TYPE_MASK, GTF_PERMIT_ACCESS);
                        prop_assert_eq!(before.domid, 0);
                        prop_assert!(RAM.contains(&u64::from(frame)));
                        prop_assert!(readonly || before.flags & GTF_READONLY == 0);
                        live.push((h, mt.get(h).unwrap()));
                    }
                } else if !live.is_empty() {
                    let (h, m) = live.remove(n as usize % live.len());
                    prop_assert_eq!(unmap(&mut mt, h, Some(&mut t)), Ok(m));
                }
                prop_assert!(mt.used() <= 6 && mt.used() == live.len());
                for (gref, &w) in t.words().iter().enumerate() {
                    let held: Vec<_> = live.iter().filter(|(_, m)| m.gref == gref as u32).collect();
                    let flags = Entry::from_u64(w).flags;
                    if !held.is_empty() {
                        touched[gref] = true;
                        prop_assert!(flags & GTF_READING != 0, "mapped grant {} revocable", gref);
                    } else if touched[gref] {
                        prop_assert!(flags & (GTF_READING | GTF_WRITING) == 0, "unmapped grant {} still in use", gref);
                    } else {
                        prop_assert_eq!(w, words[gref], "an entry never mapped was changed");
                    }
                    if held.iter().any(|(_, m)| m.writable) {
                        prop_assert!(flags & GTF_WRITING != 0, "writably mapped grant {} without GTF_writing", gref);
                    }
                }
            }
        }
    }
}
