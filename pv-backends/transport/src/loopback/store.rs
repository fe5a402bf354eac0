//! The in-memory xenstore and its watches.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use super::Hub;
use crate::{DomId, Error, Result, WatchEvent, Xenstore};

struct Watch {
    path: String,
    token: String,
    queue: Weak<WatchQueue>,
}

#[derive(Default)]
pub(super) struct Store {
    nodes: BTreeMap<String, Vec<u8>>,
    watches: Vec<Watch>,
}

#[derive(Default)]
struct WatchQueue {
    events: Mutex<VecDeque<WatchEvent>>,
    cv: Condvar,
}

impl WatchQueue {
    fn push(&self, ev: WatchEvent) {
        self.events.lock().unwrap().push_back(ev);
        self.cv.notify_all();
    }
}

fn check_path(path: &str) -> Result<()> {
    let ok = path.starts_with('/')
        && path.len() <= xen_abi::io::xs_wire::XENSTORE_ABS_PATH_MAX
        && (path == "/" || !path.ends_with('/'))
        && !path.contains("//")
        && path
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"/_-@.".contains(&c));
    if ok {
        Ok(())
    } else {
        Err(Error::Store("EINVAL".into()))
    }
}

/// `a` is `b` or lies below it.
fn within(a: &str, b: &str) -> bool {
    a == b || b == "/" || (a.starts_with(b) && a.as_bytes().get(b.len()) == Some(&b'/'))
}

impl Store {
    pub(super) fn dump(&self) -> Vec<(String, Vec<u8>)> {
        self.nodes
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn create(&mut self, path: &str, value: Option<&[u8]>) {
        let mut at = 0;
        while let Some(i) = path[at + 1..].find('/') {
            at += i + 1;
            self.nodes.entry(path[..at].to_string()).or_default();
        }
        match value {
            Some(v) => {
                self.nodes.insert(path.to_string(), v.to_vec());
            }
            None => {
                self.nodes.entry(path.to_string()).or_default();
            }
        }
    }

    fn fire(&mut self, changed: &str) {
        self.watches.retain(|w| w.queue.strong_count() > 0);
        for w in &self.watches {
            // A change below the watch fires it; so does removing a parent.
            if within(changed, &w.path) || within(&w.path, changed) {
                if let Some(q) = w.queue.upgrade() {
                    q.push(WatchEvent {
                        path: changed.to_string(),
                        token: w.token.clone(),
                    });
                }
            }
        }
    }
}

/// One xenstore connection.
pub struct LoopXenstore {
    hub: Arc<Hub>,
    #[allow(dead_code)]
    domid: DomId,
    queue: Arc<WatchQueue>,
}

impl LoopXenstore {
    pub(super) fn new(hub: Arc<Hub>, domid: DomId) -> Self {
        Self {
            hub,
            domid,
            queue: Arc::default(),
        }
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.hub.store.lock().unwrap()
    }
}

impl Xenstore for LoopXenstore {
    fn read(&self, path: &str) -> Result<Vec<u8>> {
        check_path(path)?;
        self.store().nodes.get(path).cloned().ok_or(Error::NotFound)
    }

    fn write(&self, path: &str, value: &[u8]) -> Result<()> {
        self.write_all(&[(path, value)])
    }

    fn write_all(&self, entries: &[(&str, &[u8])]) -> Result<()> {
        for (p, v) in entries {
            check_path(p)?;
            if v.len() > xen_abi::io::xs_wire::XENSTORE_PAYLOAD_MAX {
                return Err(Error::Store("E2BIG".into()));
            }
        }
        let mut s = self.store();
        for (p, v) in entries {
            s.create(p, Some(v));
        }
        for (p, _) in entries {
            s.fire(p);
        }
        Ok(())
    }

    fn mkdir(&self, path: &str) -> Result<()> {
        check_path(path)?;
        let mut s = self.store();
        if !s.nodes.contains_key(path) {
            s.create(path, None);
            s.fire(path);
        }
        Ok(())
    }

    fn rm(&self, path: &str) -> Result<()> {
        check_path(path)?;
        let mut s = self.store();
        if !s.nodes.contains_key(path) {
            return Err(Error::NotFound);
        }
        s.nodes.retain(|k, _| !within(k, path));
        s.fire(path);
        Ok(())
    }

    fn directory(&self, path: &str) -> Result<Vec<String>> {
        check_path(path)?;
        let s = self.store();
        if path != "/" && !s.nodes.contains_key(path) {
            return Err(Error::NotFound);
        }
        let prefix = if path == "/" {
            "/".to_string()
        } else {
            format!("{path}/")
        };
        Ok(s.nodes
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| &k[prefix.len()..])
            .filter(|rest| !rest.is_empty() && !rest.contains('/'))
            .map(str::to_string)
            .collect())
    }

    fn watch(&self, path: &str, token: &str) -> Result<()> {
        check_path(path)?;
        let mut s = self.store();
        s.watches.push(Watch {
            path: path.to_string(),
            token: token.to_string(),
            queue: Arc::downgrade(&self.queue),
        });
        self.queue.push(WatchEvent {
            path: path.to_string(),
            token: token.to_string(),
        });
        Ok(())
    }

    fn unwatch(&self, path: &str, token: &str) -> Result<()> {
        let mut s = self.store();
        let mine = Arc::as_ptr(&self.queue);
        let before = s.watches.len();
        s.watches.retain(|w| {
            !(w.path == path && w.token == token && std::ptr::eq(w.queue.as_ptr(), mine))
        });
        if s.watches.len() == before {
            return Err(Error::NotFound);
        }
        Ok(())
    }

    fn wait_watch(&self, timeout_ms: u32) -> Result<Option<WatchEvent>> {
        let deadline = Instant::now() + Duration::from_millis(timeout_ms.into());
        let mut q = self.queue.events.lock().unwrap();
        loop {
            if let Some(ev) = q.pop_front() {
                return Ok(Some(ev));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            q = self.queue.cv.wait_timeout(q, deadline - now).unwrap().0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Loopback;
    use crate::{Error, WatchEvent};

    #[test]
    fn nodes_and_directories() {
        let lb = Loopback::new();
        let xs = lb.xenstore(0);
        xs.write("/local/domain/1/device/vkbd/0/state", b"1")
            .unwrap();
        assert_eq!(
            xs.directory("/local/domain/1/device").unwrap(),
            vec!["vkbd"]
        );
        assert_eq!(xs.read("/local/domain/1/device/vkbd").unwrap(), b"");
        assert_eq!(xs.read("/nope"), Err(Error::NotFound));
        assert!(xs.read("relative").is_err());
        assert!(xs.write("/bad//path", b"").is_err());
        xs.rm("/local/domain/1/device").unwrap();
        assert_eq!(
            xs.read("/local/domain/1/device/vkbd/0/state"),
            Err(Error::NotFound)
        );
        assert_eq!(
            xs.directory("/local/domain/1").unwrap(),
            Vec::<String>::new()
        );
    }

    #[test]
    fn watches_fire_on_set_and_below() {
        let lb = Loopback::new();
        let (a, b) = (lb.xenstore(0), lb.xenstore(1));
        a.watch("/w", "tok").unwrap();
        let ev = |p: &str| {
            Some(WatchEvent {
                path: p.into(),
                token: "tok".into(),
            })
        };
        assert_eq!(a.wait_watch(0).unwrap(), ev("/w"));
        b.write("/w/x/y", b"1").unwrap();
        b.write("/wx", b"1").unwrap(); // a sibling with a common prefix
        assert_eq!(a.wait_watch(100).unwrap(), ev("/w/x/y"));
        assert_eq!(a.wait_watch(0).unwrap(), None);
        b.rm("/w").unwrap();
        assert_eq!(a.wait_watch(100).unwrap(), ev("/w"));
        a.unwatch("/w", "tok").unwrap();
        b.write("/w/z", b"").unwrap();
        assert_eq!(a.wait_watch(0).unwrap(), None);
        assert_eq!(b.wait_watch(0).unwrap(), None, "watches are per connection");
    }
}
