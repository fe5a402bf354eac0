extern crate std;

use std::collections::VecDeque;
use std::vec::Vec;

use proptest::prelude::*;

use super::*;

fn seq_entry<const E: usize>(seq: u64) -> [u8; E] {
    let mut e = [0u8; E];
    e[..8].copy_from_slice(&seq.to_le_bytes());
    // Fill the rest so a torn or stale slot would show up as a mismatch.
    for (i, b) in e[8..].iter_mut().enumerate() {
        *b = (seq as u8).wrapping_add(i as u8);
    }
    e
}

fn entry_seq<const E: usize>(e: &[u8; E]) -> u64 {
    let seq = u64::from_le_bytes(e[..8].try_into().unwrap());
    assert_eq!(*e, seq_entry::<E>(seq), "slot contents corrupted");
    seq
}

/// Header as a frontend would leave it with every index at `start`.
fn header_at(mem: &PageMemory, start: u32) {
    RingHeader {
        req_prod: start,
        req_event: start.wrapping_add(1),
        rsp_prod: start,
        rsp_event: start.wrapping_add(1),
    }
    .store(mem);
}

#[test]
fn header_layout_matches_ring_h() {
    assert_eq!(HEADER_SIZE, 64);
    let h = RingHeader {
        req_prod: 0x0403_0201,
        req_event: 0x0807_0605,
        rsp_prod: 0x0c0b_0a09,
        rsp_event: 0x100f_0e0d,
    };
    let b = h.encode();
    assert_eq!(&b[..16], &(1u8..=16).collect::<Vec<_>>()[..]);
    assert!(b[16..].iter().all(|&x| x == 0));
    assert_eq!(RingHeader::decode(&b), Ok(h));
    assert!(RingHeader::decode(&b[..63]).is_err());
}

#[test]
fn ring_sizes_match_known_protocols() {
    // sndif/displif: 64-byte slots, 63 fit, rounded down to 32.
    assert_eq!(ring_size(4096, 64), 32);
    // blkif: 112-byte slots give the well-known 32.
    assert_eq!(ring_size(4096, 112), 32);
    // netif tx: 12-byte slots give 256.
    assert_eq!(ring_size(4096, 12), 256);
    assert_eq!(ring_size(4096, 4032), 1);
    assert_eq!(ring_size(4096, 4033), 0);
    assert_eq!(ring_size(64, 1), 0);
    assert_eq!(ring_size(4096, 0), 0);
    assert_eq!(ring_size(0, 8), 0);
}

#[test]
fn notify_rule_examples() {
    // Peer asked for an event at 5; producing 4 -> 6 passes it.
    assert!(needs_notify(4, 6, 5));
    assert!(needs_notify(4, 5, 5));
    assert!(!needs_notify(5, 6, 5));
    assert!(!needs_notify(4, 6, 7));
    // Same across the u32 wrap.
    assert!(needs_notify(u32::MAX - 1, 1, 0));
    assert!(!needs_notify(u32::MAX - 1, 1, 2));
    // Nothing produced: never notify.
    assert!(!needs_notify(9, 9, 9));
}

#[test]
fn init_writes_initial_header() {
    let mem = PageMemory::new();
    mem.write_bytes(0, &[0xAA; 64]);
    let front = FrontRing::<_, 64>::init(&mem).unwrap();
    assert_eq!(front.size(), 32);
    assert_eq!(RingHeader::load(&mem), RingHeader::INITIAL);
    assert!(mem.snapshot()[16..64].iter().all(|&b| b == 0));
}

#[test]
fn too_small_area_is_rejected() {
    let mem = PageMemory::new();
    assert_eq!(
        FrontRing::<_, 4096>::init(&mem).err(),
        Some(RingError::TooSmall {
            area: 4096,
            entry: 4096
        })
    );
    assert!(BackRing::<_, 4033>::attach(&mem, 0).is_err());
}

#[test]
fn request_response_round_trip_and_notifications() {
    let mem = PageMemory::new();
    let mut front = FrontRing::<_, 64>::init(&mem).unwrap();
    let mut back = BackRing::<_, 64>::attach(&mem, 0).unwrap();

    front.push_request(&seq_entry(1)).unwrap();
    front.push_request(&seq_entry(2)).unwrap();
    // Backend has not published anything: unpublished requests are hidden.
    assert_eq!(back.pending_requests(), Ok(0));
    // Initial req_event is 1, so the first publish must notify.
    assert!(front.publish_requests());
    assert_eq!(back.pending_requests(), Ok(2));

    assert_eq!(entry_seq(&back.take_request().unwrap().unwrap()), 1);
    assert_eq!(entry_seq(&back.take_request().unwrap().unwrap()), 2);
    assert_eq!(back.take_request(), Ok(None));
    // Backend has not re-armed req_event: a further request is silent.
    front.push_request(&seq_entry(3)).unwrap();
    assert!(!front.publish_requests());
    assert!(back.final_check_for_requests().unwrap());
    back.take_request().unwrap().unwrap();
    assert!(!back.final_check_for_requests().unwrap());
    front.push_request(&seq_entry(4)).unwrap();
    assert!(front.publish_requests(), "sleeping backend must be woken");

    back.push_response(&seq_entry(101)).unwrap();
    assert!(back.publish_responses());
    assert_eq!(entry_seq(&front.take_response().unwrap().unwrap()), 101);
}

#[test]
fn front_stops_when_full() {
    let mem = PageMemory::new();
    let mut front = FrontRing::<_, 64>::init(&mem).unwrap();
    for i in 0..32 {
        front.push_request(&seq_entry(i)).unwrap();
    }
    assert!(front.is_full());
    assert_eq!(front.push_request(&seq_entry(99)), Err(RingError::Full));
}

#[test]
fn backend_cannot_answer_unconsumed_request() {
    let mem = PageMemory::new();
    let _front = FrontRing::<_, 64>::init(&mem).unwrap();
    let mut back = BackRing::<_, 64>::attach(&mem, 0).unwrap();
    assert_eq!(
        back.push_response(&[0; 64]),
        Err(RingError::NoRequestToAnswer)
    );
}

#[test]
fn consumer_rejects_overflowing_request_producer() {
    let mem = PageMemory::new();
    let _front = FrontRing::<_, 64>::init(&mem).unwrap();
    let mut back = BackRing::<_, 64>::attach(&mem, 0).unwrap();
    // A full ring is fine...
    mem.write_u32(offsets::REQ_PROD, 32);
    assert_eq!(back.pending_requests(), Ok(32));
    // ...one more is a frontend claiming 33 requests in 32 slots.
    mem.write_u32(offsets::REQ_PROD, 33);
    let err = RingError::ProducerOverflow { prod: 33, size: 32 };
    assert_eq!(back.pending_requests(), Err(err));
    assert_eq!(back.take_request(), Err(err));
    assert_eq!(back.final_check_for_requests(), Err(err));
    // A producer index that moves backwards is rejected too.
    mem.write_u32(offsets::REQ_PROD, 2);
    back.take_request().unwrap().unwrap();
    back.take_request().unwrap().unwrap();
    mem.write_u32(offsets::REQ_PROD, 1);
    assert!(back.pending_requests().is_err());
}

#[test]
fn consumer_rejects_overflowing_response_producer() {
    let mem = PageMemory::new();
    let mut front = FrontRing::<_, 64>::init(&mem).unwrap();
    front.push_request(&seq_entry(0)).unwrap();
    front.publish_requests();
    mem.write_u32(offsets::RSP_PROD, 1);
    assert_eq!(front.pending_responses(), Ok(1));
    // More responses than requests outstanding.
    mem.write_u32(offsets::RSP_PROD, 2);
    assert!(front.take_response().is_err());
    // More than the ring holds (RING_RESPONSE_PROD_OVERFLOW).
    mem.write_u32(offsets::RSP_PROD, 33);
    assert!(front.final_check_for_responses().is_err());
}

#[derive(Clone, Copy, Debug)]
enum Op {
    FrontPush,
    FrontPublish,
    FrontTake,
    FrontFinal,
    BackTake,
    BackRespond,
    BackPublish,
    BackFinal,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::FrontPush),
        2 => Just(Op::FrontPublish),
        2 => Just(Op::FrontTake),
        1 => Just(Op::FrontFinal),
        3 => Just(Op::BackTake),
        3 => Just(Op::BackRespond),
        2 => Just(Op::BackPublish),
        1 => Just(Op::BackFinal),
    ]
}

fn start_index() -> impl Strategy<Value = u32> {
    prop_oneof![Just(0u32), (u32::MAX - 70)..=u32::MAX, any::<u32>()]
}

/// Whether `event` is one of the indices old+1 ..= new (counted, not via
/// the subtraction trick, so the two formulations check each other).
fn event_passed(old: u32, new: u32, event: u32) -> bool {
    (1..=new.wrapping_sub(old)).any(|k| old.wrapping_add(k) == event)
}

/// Plays `ops` against a front and a back ring sharing one page and checks
/// them against a simple queue model.
fn run_model<const E: usize>(start: u32, ops: &[Op]) -> Result<(), TestCaseError> {
    let mem = PageMemory::new();
    header_at(&mem, start);
    let mut front = FrontRing::<_, E>::attach(&mem, start).unwrap();
    let mut back = BackRing::<_, E>::attach(&mem, start).unwrap();
    let size = u64::from(front.size());

    // Sequence numbers: requests pushed/published/consumed, responses
    // pushed/published/consumed.
    let (mut pushed, mut published, mut taken) = (0u64, 0u64, 0u64);
    let (mut answered, mut rsp_published, mut rsp_taken) = (0u64, 0u64, 0u64);
    let mut awaiting: VecDeque<u64> = VecDeque::new();
    let (mut front_asleep, mut back_asleep) = (false, false);

    for &op in ops {
        match op {
            Op::FrontPush | Op::FrontPublish | Op::FrontTake | Op::FrontFinal => {
                front_asleep = false
            }
            _ => back_asleep = false,
        }
        match op {
            Op::FrontPush => {
                let r = front.push_request(&seq_entry::<E>(pushed));
                if pushed - rsp_taken == size {
                    prop_assert_eq!(r, Err(RingError::Full));
                } else {
                    prop_assert_eq!(r, Ok(()));
                    pushed += 1;
                }
            }
            Op::FrontPublish => {
                let old = start.wrapping_add(published as u32);
                let new = start.wrapping_add(pushed as u32);
                let event = mem.read_u32(offsets::REQ_EVENT);
                let notify = front.publish_requests();
                prop_assert_eq!(notify, event_passed(old, new, event));
                if back_asleep && new != old {
                    prop_assert!(notify, "lost wakeup of the backend");
                }
                back_asleep &= !notify;
                published = pushed;
            }
            Op::BackTake => match back.take_request().unwrap() {
                Some(e) => {
                    prop_assert_eq!(entry_seq(&e), taken);
                    awaiting.push_back(taken);
                    taken += 1;
                }
                None => prop_assert_eq!(taken, published),
            },
            Op::BackRespond => match awaiting.pop_front() {
                Some(seq) => {
                    back.push_response(&seq_entry::<E>(seq)).unwrap();
                    answered += 1;
                }
                None => prop_assert_eq!(
                    back.push_response(&[0; E]),
                    Err(RingError::NoRequestToAnswer)
                ),
            },
            Op::BackPublish => {
                let old = start.wrapping_add(rsp_published as u32);
                let new = start.wrapping_add(answered as u32);
                let event = mem.read_u32(offsets::RSP_EVENT);
                let notify = back.publish_responses();
                prop_assert_eq!(notify, event_passed(old, new, event));
                if front_asleep && new != old {
                    prop_assert!(notify, "lost wakeup of the frontend");
                }
                front_asleep &= !notify;
                rsp_published = answered;
            }
            Op::FrontTake => match front.take_response().unwrap() {
                Some(e) => {
                    prop_assert_eq!(entry_seq(&e), rsp_taken);
                    rsp_taken += 1;
                }
                None => prop_assert_eq!(rsp_taken, rsp_published),
            },
            Op::FrontFinal => {
                let work = front.final_check_for_responses().unwrap();
                prop_assert_eq!(work, rsp_taken < rsp_published);
                front_asleep = !work;
            }
            Op::BackFinal => {
                let work = back.final_check_for_requests().unwrap();
                prop_assert_eq!(work, taken < published);
                back_asleep = !work;
            }
        }
        prop_assert_eq!(
            u64::from(front.free_requests()),
            size - (pushed - rsp_taken)
        );
    }

    // Drain: everything pushed arrives exactly once, in order.
    front.publish_requests();
    while let Some(e) = back.take_request().unwrap() {
        prop_assert_eq!(entry_seq(&e), taken);
        awaiting.push_back(taken);
        taken += 1;
    }
    prop_assert_eq!(taken, pushed);
    while let Some(seq) = awaiting.pop_front() {
        back.push_response(&seq_entry::<E>(seq)).unwrap();
    }
    back.publish_responses();
    while let Some(e) = front.take_response().unwrap() {
        prop_assert_eq!(entry_seq(&e), rsp_taken);
        rsp_taken += 1;
    }
    prop_assert_eq!(rsp_taken, pushed);
    prop_assert_eq!(front.free_requests() as u64, size);
    Ok(())
}

proptest! {
    #[test]
    fn interleavings_never_lose_or_duplicate_64(
        start in start_index(),
        ops in proptest::collection::vec(op(), 0..400),
    ) {
        run_model::<64>(start, &ops)?;
    }

    #[test]
    fn interleavings_never_lose_or_duplicate_tiny_ring(
        start in start_index(),
        ops in proptest::collection::vec(op(), 0..200),
    ) {
        // 1000-byte slots: 4 fit, so the full-ring paths get exercised.
        run_model::<1000>(start, &ops)?;
    }

    #[test]
    fn notify_rule_matches_counting(old in any::<u32>(), step in 0u32..64, event in any::<u32>(), near in 0u32..70) {
        let new = old.wrapping_add(step);
        prop_assert_eq!(needs_notify(old, new, event), event_passed(old, new, event));
        let event = old.wrapping_add(near);
        prop_assert_eq!(needs_notify(old, new, event), event_passed(old, new, event));
    }

    #[test]
    fn ring_size_is_largest_fitting_power_of_two(area in 0usize..70_000, entry in 1usize..5000) {
        let n = ring_size(area, entry) as usize;
        if n == 0 {
            prop_assert!(area < HEADER_SIZE + entry);
        } else {
            prop_assert!(n.is_power_of_two());
            prop_assert!(HEADER_SIZE + n * entry <= area);
            prop_assert!(HEADER_SIZE + 2 * n * entry > area);
        }
    }

    #[test]
    fn backend_accepts_exactly_the_sane_producer_indices(
        start in start_index(),
        consumed in 0u32..=32,
        answered_frac in 0u32..=32,
        prod_delta in any::<u32>(),
        near in -40i64..80,
        pick_near in any::<bool>(),
    ) {
        let mem = PageMemory::new();
        header_at(&mem, start);
        let mut back = BackRing::<_, 64>::attach(&mem, start).unwrap();
        let answered = answered_frac.min(consumed);
        mem.write_u32(offsets::REQ_PROD, start.wrapping_add(consumed));
        for _ in 0..consumed {
            back.take_request().unwrap().unwrap();
        }
        for _ in 0..answered {
            back.push_response(&[0; 64]).unwrap();
        }
        let prod = if pick_near {
            start.wrapping_add(near as u32)
        } else {
            start.wrapping_add(prod_delta)
        };
        mem.write_u32(offsets::REQ_PROD, prod);
        let span = prod.wrapping_sub(start.wrapping_add(answered));
        let avail = prod.wrapping_sub(start.wrapping_add(consumed));
        let sane = span <= 32 && avail <= span;
        match back.pending_requests() {
            Ok(n) => {
                prop_assert!(sane);
                prop_assert_eq!(n, avail);
            }
            Err(e) => {
                prop_assert!(!sane);
                prop_assert_eq!(e, RingError::ProducerOverflow { prod, size: 32 });
            }
        }
    }
}
