//! Just enough of pixman (Debian's libpixman-1-0), loaded at run time, to
//! do what the cockpit engine does: SRC copies, scaled SRC with a bilinear
//! or nearest filter, and OVER with a constant opacity mask. Every call into
//! C is here.
#![allow(unsafe_code)]

use std::ffi::c_void;

use libloading::{Library, Symbol};

type Fixed = i32;
const ONE: Fixed = 1 << 16;

#[repr(C)]
struct Transform {
    matrix: [[Fixed; 3]; 3],
}

#[repr(C)]
struct Color {
    red: u16,
    green: u16,
    blue: u16,
    alpha: u16,
}

/// `PIXMAN_FORMAT(32, PIXMAN_TYPE_ARGB, a, 8, 8, 8)`.
pub const A8R8G8B8: u32 = 0x2002_8888;
pub const X8R8G8B8: u32 = 0x2002_0888;
pub const OP_SRC: u32 = 1;
pub const OP_OVER: u32 = 3;
pub const FILTER_NEAREST: u32 = 3;
pub const FILTER_BILINEAR: u32 = 4;
const REPEAT_PAD: u32 = 2;

type CreateBits = unsafe extern "C" fn(u32, i32, i32, *mut u32, i32) -> *mut c_void;
type CreateSolid = unsafe extern "C" fn(*const Color) -> *mut c_void;
type Unref = unsafe extern "C" fn(*mut c_void) -> i32;
type Composite32 = unsafe extern "C" fn(u32, *mut c_void, *mut c_void, *mut c_void, i32, i32, i32, i32, i32, i32, i32, i32);
type SetTransform = unsafe extern "C" fn(*mut c_void, *const Transform) -> i32;
type SetFilter = unsafe extern "C" fn(*mut c_void, u32, *const Fixed, i32) -> i32;
type SetRepeat = unsafe extern "C" fn(*mut c_void, u32);

/// The loaded library.
pub struct Pixman {
    lib: Library,
}

/// A pixman image over pixels this side owns (they outlive the image).
pub struct Image<'p> {
    px: &'p Pixman,
    ptr: *mut c_void,
}

impl Pixman {
    /// Loads `libpixman-1.so.0`, or says why not.
    pub fn load() -> Result<Pixman, String> {
        // SAFETY: loading pixman runs only its (side-effect free) ELF
        // constructors; the library stays loaded as long as `Pixman` lives.
        let lib = unsafe { Library::new("libpixman-1.so.0") }.map_err(|e| e.to_string())?;
        let px = Pixman { lib };
        // Fail now rather than mid-benchmark if a symbol is missing.
        px.sym::<Composite32>(b"pixman_image_composite32\0")?;
        Ok(px)
    }

    fn sym<T>(&self, name: &[u8]) -> Result<Symbol<'_, T>, String> {
        // SAFETY: every `T` used with this is the C prototype of the named
        // pixman function, as declared in pixman.h.
        unsafe { self.lib.get::<T>(name) }.map_err(|e| e.to_string())
    }

    /// An image over `pixels` (`stride` in pixels), in `format`.
    pub fn bits<'p>(&'p self, format: u32, w: i32, h: i32, pixels: &'p mut [u32], stride: usize) -> Image<'p> {
        assert!(pixels.len() >= stride * h as usize && stride >= w as usize);
        let f = self
            .sym::<CreateBits>(b"pixman_image_create_bits\0")
            .expect("pixman_image_create_bits");
        // SAFETY: `pixels` holds `h` rows of `stride` u32s and is borrowed
        // for the image's lifetime `'p`, so pixman never sees freed memory.
        let ptr = unsafe { f(format, w, h, pixels.as_mut_ptr(), (stride * 4) as i32) };
        assert!(!ptr.is_null(), "pixman_image_create_bits failed");
        Image { px: self, ptr }
    }

    /// A solid image of premultiplied alpha `a` (0..=1), for opacity masks.
    pub fn solid_alpha(&self, a: f64) -> Image<'_> {
        let f = self
            .sym::<CreateSolid>(b"pixman_image_create_solid_fill\0")
            .expect("pixman_image_create_solid_fill");
        let c = Color {
            red: 0,
            green: 0,
            blue: 0,
            alpha: (a * 65535.0).round() as u16,
        };
        // SAFETY: `c` is a valid pixman_color_t; pixman copies it.
        let ptr = unsafe { f(&c) };
        assert!(!ptr.is_null());
        Image { px: self, ptr }
    }

    /// `pixman_image_composite32(op, src, mask, dst, ...)` over the
    /// destination rectangle (dx, dy, w, h), source and mask at the same origin.
    pub fn composite(
        &self,
        op: u32,
        src: &Image<'_>,
        mask: Option<&Image<'_>>,
        dst: &mut Image<'_>,
        (dx, dy, w, h): (i32, i32, i32, i32),
        src_at: (i32, i32),
    ) {
        let f = self
            .sym::<Composite32>(b"pixman_image_composite32\0")
            .expect("pixman_image_composite32");
        let m = mask.map_or(std::ptr::null_mut(), |m| m.ptr);
        // SAFETY: all three images are live (borrowed), and pixman clips
        // the rectangle to the destination's bounds.
        unsafe { f(op, src.ptr, m, dst.ptr, src_at.0, src_at.1, 0, 0, dx, dy, w, h) }
    }
}

impl Image<'_> {
    /// Samples this (source) image scaled by `sx`, `sy` (destination pixel
    /// to source pixel), edges padded, with `filter`.
    pub fn scale(&mut self, sx: f64, sy: f64, filter: u32) {
        self.transform([[sx, 0.0, 0.0], [0.0, sy, 0.0]], filter);
    }

    /// Samples this (source) image at `m` × (x, y, 1) for destination pixel
    /// (x, y), edges padded, with `filter`.
    pub fn transform(&mut self, m: [[f64; 3]; 2], filter: u32) {
        let f = |v: f64| (v * ONE as f64).round() as Fixed;
        let t = Transform {
            matrix: [
                [f(m[0][0]), f(m[0][1]), f(m[0][2])],
                [f(m[1][0]), f(m[1][1]), f(m[1][2])],
                [0, 0, ONE],
            ],
        };
        let set_t = self
            .px
            .sym::<SetTransform>(b"pixman_image_set_transform\0")
            .expect("pixman_image_set_transform");
        let set_f = self
            .px
            .sym::<SetFilter>(b"pixman_image_set_filter\0")
            .expect("pixman_image_set_filter");
        let set_r = self
            .px
            .sym::<SetRepeat>(b"pixman_image_set_repeat\0")
            .expect("pixman_image_set_repeat");
        // SAFETY: `self.ptr` is a live image; `t` is a valid pixman_transform_t
        // that pixman copies; no filter parameters are passed.
        unsafe {
            set_t(self.ptr, &t);
            set_f(self.ptr, filter, std::ptr::null(), 0);
            set_r(self.ptr, REPEAT_PAD);
        }
    }
}

impl Drop for Image<'_> {
    fn drop(&mut self) {
        if let Ok(f) = self.px.sym::<Unref>(b"pixman_image_unref\0") {
            // SAFETY: the image was created by pixman and is unreferenced once.
            unsafe { f(self.ptr) };
        }
    }
}
