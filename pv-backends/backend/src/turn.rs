//! A bounded turn at a frontend's request ring: a device answers at most a
//! ring's worth of requests, and starts no new one once the turn has lasted
//! [`TURN_TIME`]; what is left waits for its next tick. So one frontend that
//! keeps its ring full cannot hold its device thread (watches, removal,
//! stop).

use std::time::{Duration, Instant};

use xen_abi::io::ring::{BackRing, RingMemory};

use crate::DeviceError;

/// Requests one turn answers at most.
pub const REQUESTS_PER_TURN: u32 = 32;
/// How long a turn goes on starting requests.
pub const TURN_TIME: Duration = Duration::from_millis(50);

/// One turn at one ring.
#[derive(Debug)]
pub struct Turn {
    started: Instant,
    taken: u32,
    cut: bool,
}

impl Default for Turn {
    fn default() -> Self {
        Self::new()
    }
}

impl Turn {
    /// A turn starting now.
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            taken: 0,
            cut: false,
        }
    }

    /// The next request on `ring`, or `None` when the ring is empty (its
    /// request event re-armed, so the frontend's next one notifies) or the
    /// turn is over ([`cut`](Self::cut)). Indices beyond the ring are the
    /// frontend's error.
    pub fn next_request<M: RingMemory, const E: usize>(
        &mut self,
        ring: &mut BackRing<M, E>,
    ) -> Result<Option<[u8; E]>, DeviceError> {
        let beyond = |e| DeviceError(format!("request ring indices beyond the ring: {e:?}"));
        loop {
            if self.taken >= REQUESTS_PER_TURN || self.started.elapsed() > TURN_TIME {
                self.cut = true;
                return Ok(None);
            }
            match ring.take_request().map_err(beyond)? {
                Some(req) => {
                    self.taken += 1;
                    return Ok(Some(req));
                }
                // Re-arm req_event, then look again (lost-wakeup race).
                None if ring.final_check_for_requests().map_err(beyond)? => continue,
                None => return Ok(None),
            }
        }
    }

    /// Whether the turn ended with requests left on the ring.
    pub fn cut(&self) -> bool {
        self.cut
    }
}
