//! A dma-buf from vgem, the kernel's virtual GEM driver, read by
//! `DmaBuf`. vgem maps its buffers as raw page frames (`VM_PFNMAP`), as
//! capture drivers on vb2-dma-contig, dma-heaps and TTM do on boards: the
//! kernel will not read those for `process_vm_readv`, so this is the
//! direct-copy path. Needs vgem, so it is built only with the `vgem-test`
//! feature and run inside the camera VM by `cargo xtask test`.
#![cfg(feature = "vgem-test")]

use std::fs::{File, OpenOptions};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use cockpit_dmabuf::DmaBuf;

/// `struct drm_mode_create_dumb` (include/uapi/drm/drm_mode.h).
#[repr(C)]
#[derive(Default)]
struct CreateDumb {
    height: u32,
    width: u32,
    bpp: u32,
    flags: u32,
    handle: u32,
    pitch: u32,
    size: u64,
}

/// `struct drm_prime_handle` (include/uapi/drm/drm.h).
#[repr(C)]
#[derive(Default)]
struct PrimeHandle {
    handle: u32,
    flags: u32,
    fd: i32,
}

/// `_IOWR('d', nr, T)`.
const fn drm_iowr<T>(nr: u64) -> u64 {
    (3 << 30) | ((std::mem::size_of::<T>() as u64) << 16) | (b'd' as u64) << 8 | nr
}

/// The vgem device's node, found by its parent device's name.
fn vgem_card() -> File {
    for e in std::fs::read_dir("/sys/class/drm")
        .expect("/sys/class/drm")
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        let parent = std::fs::read_link(e.path().join("device")).unwrap_or_default();
        if name.starts_with("card")
            && !name.contains('-')
            && parent.file_name().is_some_and(|p| p == "vgem")
        {
            return OpenOptions::new()
                .read(true)
                .write(true)
                .open(format!("/dev/dri/{name}"))
                .expect("opening vgem's card");
        }
    }
    panic!("no vgem device (insmod vgem.ko first)");
}

#[test]
fn a_vgem_dmabuf_is_read_directly_and_whole() {
    let card = vgem_card();
    let (width, height) = (256u32, 64u32);
    let mut dumb = CreateDumb {
        height,
        width,
        bpp: 32,
        ..Default::default()
    };
    // SAFETY: DRM_IOCTL_MODE_CREATE_DUMB on an open DRM fd with a live, correctly laid-out argument.
    let rc = unsafe {
        libc::ioctl(
            card.as_raw_fd(),
            drm_iowr::<CreateDumb>(0xb2) as _,
            &mut dumb,
        )
    };
    assert_eq!(
        rc,
        0,
        "vgem's dumb buffer: {}",
        std::io::Error::last_os_error()
    );
    let mut prime = PrimeHandle {
        handle: dumb.handle,
        flags: (libc::O_CLOEXEC | libc::O_RDWR) as u32,
        fd: -1,
    };
    // SAFETY: DRM_IOCTL_PRIME_HANDLE_TO_FD on the same fd, argument as above.
    let rc = unsafe {
        libc::ioctl(
            card.as_raw_fd(),
            drm_iowr::<PrimeHandle>(0x2d) as _,
            &mut prime,
        )
    };
    assert_eq!(
        rc,
        0,
        "exporting the buffer: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: the ioctl succeeded, so `fd` is a new dma-buf fd owned by nobody else.
    let exported = unsafe { OwnedFd::from_raw_fd(prime.fd) };
    let len = dumb.size as usize;

    // The client's side: it draws through its own mapping.
    let pattern: Vec<u8> = (0..len).map(|i| (i * 7 % 253) as u8).collect();
    let writer = rustix::io::dup(&exported).unwrap();
    // SAFETY: a new shared mapping of `len` bytes (the size the driver reported) at an address of the kernel's choosing.
    let ptr = unsafe {
        rustix::mm::mmap(
            std::ptr::null_mut(),
            len,
            rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
            rustix::mm::MapFlags::SHARED,
            &writer,
            0,
        )
    }
    .expect("mapping the dma-buf for writing");
    // SAFETY: `ptr` is the live `len`-byte writable mapping just made; `pattern` is `len` bytes of ours.
    unsafe { std::ptr::copy_nonoverlapping(pattern.as_ptr(), ptr.cast::<u8>(), len) };

    // The compositor's side.
    let buf = DmaBuf::import(exported, 1 << 24).expect("importing vgem's dma-buf");
    assert_eq!(buf.len(), len);
    assert!(
        !buf.read_through_kernel(),
        "vgem's mapping is raw page frames: the kernel cannot read it, so it is read directly"
    );
    let pitch = dumb.pitch as usize;
    let mut picture = vec![0u8; len];
    assert!(buf.copy_rows(
        &mut picture,
        (0..height as usize).map(|y| (y * pitch, y * pitch..(y + 1) * pitch))
    ));
    assert!(
        picture == pattern,
        "the compositor's copy differs from what the client drew"
    );
    // SAFETY: unmapping exactly the mapping made above, not used after.
    unsafe { rustix::mm::munmap(ptr, len) }.unwrap();
}
