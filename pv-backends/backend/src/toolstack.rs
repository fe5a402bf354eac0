//! Device creation the way libxl lays it out, for tests and simulators:
//! a frontend directory in the guest's tree, a backend directory in the
//! backend domain's tree, each pointing at the other, both Initialising.

use pv_transport::xenbus::XenbusState;
use pv_transport::{domain_path, DomId, Result, Xenstore};

/// One device to create.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceSpec {
    /// Backend directory kind (usually the device type; `vinput` for a vkb
    /// with `backend-type=linux`).
    pub be_kind: String,
    /// Frontend directory kind (`vsnd`, `vdispl`, `vkbd`, `vfb`).
    pub fe_kind: String,
    /// Domain that runs the backend (the driver domain).
    pub be_dom: DomId,
    /// Domain of the guest that gets the device.
    pub fe_dom: DomId,
    /// Device number, unique per guest and kind; names both directories.
    pub dev_id: u32,
    /// Extra nodes under the frontend directory, relative paths.
    pub fe_nodes: Vec<(String, String)>,
    /// Extra nodes under the backend directory, relative paths.
    pub be_nodes: Vec<(String, String)>,
}

impl DeviceSpec {
    /// Absolute frontend directory:
    /// `/local/domain/<fe_dom>/device/<fe_kind>/<dev_id>`.
    pub fn fe_dir(&self) -> String {
        format!(
            "{}/device/{}/{}",
            domain_path(self.fe_dom),
            self.fe_kind,
            self.dev_id
        )
    }

    /// Absolute backend directory:
    /// `/local/domain/<be_dom>/backend/<be_kind>/<fe_dom>/<dev_id>`.
    pub fn be_dir(&self) -> String {
        format!(
            "{}/backend/{}/{}/{}",
            domain_path(self.be_dom),
            self.be_kind,
            self.fe_dom,
            self.dev_id
        )
    }
}

/// Writes both directories in one transaction.
pub fn create_device(xs: &dyn Xenstore, spec: &DeviceSpec) -> Result<()> {
    let (fe, be) = (spec.fe_dir(), spec.be_dir());
    let init = XenbusState::Initialising.as_str().to_string();
    let mut nodes: Vec<(String, String)> = vec![
        (format!("{fe}/backend"), be.clone()),
        (format!("{fe}/backend-id"), spec.be_dom.to_string()),
        (format!("{fe}/state"), init.clone()),
        (format!("{be}/frontend"), fe.clone()),
        (format!("{be}/frontend-id"), spec.fe_dom.to_string()),
        (format!("{be}/online"), "1".into()),
        (format!("{be}/state"), init),
    ];
    nodes.extend(
        spec.fe_nodes
            .iter()
            .map(|(k, v)| (format!("{fe}/{k}"), v.clone())),
    );
    nodes.extend(
        spec.be_nodes
            .iter()
            .map(|(k, v)| (format!("{be}/{k}"), v.clone())),
    );
    let refs: Vec<(&str, &[u8])> = nodes
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_bytes()))
        .collect();
    xs.write_all(&refs)
}

/// Removes both directories (the backend notices and stops serving).
pub fn destroy_device(xs: &dyn Xenstore, spec: &DeviceSpec) -> Result<()> {
    let _ = xs.rm(&spec.be_dir());
    let _ = xs.rm(&spec.fe_dir());
    Ok(())
}
