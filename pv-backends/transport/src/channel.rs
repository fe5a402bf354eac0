//! A frontend's request channel: one granted ring page plus an unbound
//! event-channel port, as sndif and displif use per stream/connector.

use xen_abi::io::ring::{FrontRing, RingError};

use crate::{DomId, Error, EventChannel, GrantRef, GrantTable, Port, Result, Shm};

/// The frontend end of a request/response ring with `E`-byte slots.
pub struct FrontChannel<const E: usize> {
    ring: FrontRing<Shm, E>,
    port: Port,
    next_id: u16,
}

impl<const E: usize> FrontChannel<E> {
    /// Grants a fresh ring page to `remote` and allocates a port for it.
    pub fn new(grants: &dyn GrantTable, events: &dyn EventChannel, remote: DomId) -> Result<Self> {
        let page = grants.share(remote, 1, false)?;
        let ring = FrontRing::init(page).map_err(|_| Error::Invalid("ring page"))?;
        let port = events.alloc_unbound(remote)?;
        Ok(Self {
            ring,
            port,
            next_id: 0,
        })
    }

    /// Grant of the ring page, for the frontend to publish in xenstore
    /// (e.g. `ring-ref` / `req-ring-ref`).
    pub fn gref(&self) -> GrantRef {
        self.ring.memory().grefs()[0]
    }

    /// Our unbound port, for the frontend to publish in xenstore
    /// (`event-channel` / `req-event-channel`) for the backend to bind.
    pub fn port(&self) -> Port {
        self.port
    }

    /// A fresh request id.
    pub fn next_id(&mut self) -> u16 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        id
    }

    /// Queues and publishes one request, notifying the backend if needed.
    pub fn send(&mut self, events: &dyn EventChannel, req: &[u8; E]) -> Result<()> {
        self.ring.push_request(req).map_err(ring_error)?;
        if self.ring.publish_requests() {
            events.notify(self.port)?;
        }
        Ok(())
    }

    /// The next response, if the backend published one.
    pub fn take_response(&mut self) -> Result<Option<[u8; E]>> {
        self.ring.take_response().map_err(ring_error)
    }

    /// Asks for an event on the next response; `true` if one is already in.
    pub fn arm(&mut self) -> Result<bool> {
        self.ring.final_check_for_responses().map_err(ring_error)
    }

    /// Closes the port (errors are ignored); the ring page is revoked
    /// only when the channel is dropped.
    pub fn unbind(&self, events: &dyn EventChannel) {
        let _ = events.unbind(self.port);
    }
}

fn ring_error(e: RingError) -> Error {
    match e {
        RingError::Full => Error::Invalid("ring full"),
        _ => Error::Invalid("backend corrupted the ring"),
    }
}
