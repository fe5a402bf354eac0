//! Busybox initramfs images for Linux domains: busybox (of the kernel's
//! Debian architecture) at /bin/busybox, the
//! sample's `initramfs/<name>/` tree on top (its `init` first of all), and
//! the kernel modules that tree lists in a `modules` file, as a newc cpio.

use crate::debian::{self, Kernel};
use std::io::Write;
use std::path::Path;

struct Entry {
    path: String,
    mode: u32,
    data: Vec<u8>,
}

fn collect(dir: &Path, prefix: &str, out: &mut Vec<Entry>) -> Result<(), String> {
    let mut items: Vec<_> = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?.flatten().collect();
    items.sort_by_key(|e| e.file_name());
    for e in items {
        let name = e.file_name().to_string_lossy().into_owned();
        if name == "modules" && prefix.is_empty() {
            continue;
        }
        let path = format!("{prefix}{name}");
        let ft = e.file_type().map_err(|e| e.to_string())?;
        if ft.is_dir() {
            out.push(Entry { path: path.clone(), mode: 0o040755, data: Vec::new() });
            collect(&e.path(), &format!("{path}/"), out)?;
        } else {
            let data = std::fs::read(e.path()).map_err(|e| e.to_string())?;
            // Scripts and the init must be executable whatever git kept.
            let exec = name == "init" || data.starts_with(b"#!");
            out.push(Entry { path, mode: if exec { 0o100755 } else { 0o100644 }, data });
        }
    }
    Ok(())
}

/// Builds the archive for `tree` (a sample's `initramfs/<name>` directory).
pub fn build(tree: &Path, kernel: &Kernel) -> Result<Vec<u8>, String> {
    let mut entries = vec![
        Entry { path: "bin".into(), mode: 0o040755, data: Vec::new() },
        Entry { path: "bin/busybox".into(), mode: 0o100755, data: std::fs::read(debian::busybox(kernel.arch)?).map_err(|e| e.to_string())? },
        Entry { path: "dev".into(), mode: 0o040755, data: Vec::new() },
        Entry { path: "proc".into(), mode: 0o040755, data: Vec::new() },
        Entry { path: "sys".into(), mode: 0o040755, data: Vec::new() },
        Entry { path: "tmp".into(), mode: 0o041777, data: Vec::new() },
        Entry { path: "lib".into(), mode: 0o040755, data: Vec::new() },
        Entry { path: "lib/modules".into(), mode: 0o040755, data: Vec::new() },
    ];
    if let Ok(list) = std::fs::read_to_string(tree.join("modules")) {
        for rel in list.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            let file = debian::module(kernel, rel)?;
            let name = Path::new(rel).file_name().unwrap().to_string_lossy().into_owned();
            entries.push(Entry { path: format!("lib/modules/{name}"), mode: 0o100644, data: std::fs::read(file).map_err(|e| e.to_string())? });
        }
    }
    collect(tree, "", &mut entries)?;
    if !entries.iter().any(|e| e.path == "init") {
        return Err(format!("{} has no init", tree.display()));
    }

    let files: Vec<(String, u32, Vec<u8>)> = entries.into_iter().map(|e| (e.path, e.mode, e.data)).collect();
    archive(&files)
}

/// A newc cpio archive of `(path, mode, contents)`, in order (directories
/// before what they hold), as the kernel unpacks an initramfs.
pub fn archive(files: &[(String, u32, Vec<u8>)]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for (ino, (path, mode, data)) in files.iter().enumerate() {
        let b = cpio::newc::Builder::new(path).ino(ino as u32 + 1).mode(*mode).nlink(1);
        let mut w = b.write(&mut out, data.len() as u32);
        w.write_all(data).map_err(|e| e.to_string())?;
        w.finish().map_err(|e| e.to_string())?;
    }
    cpio::newc::trailer(&mut out).map_err(|e| e.to_string())?;
    Ok(out)
}
