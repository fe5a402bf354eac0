//! Just enough of pixman (Debian's libpixman-1-0), loaded at run time, to
//! do what the cockpit engine does: SRC copies, scaled SRC with a bilinear
//! or nearest filter, and OVER with a constant opacity mask. Every call into
//! C is here.
#![allow(unsafe_code)]

use std::ffi::c_void;

use libloading::Library;

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
type VersionString = unsafe extern "C" fn() -> *const std::ffi::c_char;

/// The loaded library and its functions, resolved once.
pub struct Pixman {
    create_bits: CreateBits,
    create_solid: CreateSolid,
    unref: Unref,
    composite32: Composite32,
    set_transform: SetTransform,
    set_filter: SetFilter,
    set_repeat: SetRepeat,
    /// `pixman_version_string()`.
    pub version: String,
    // Keeps the functions above mapped; dropped last.
    _lib: Library,
}

impl Pixman {
    /// Loads `libpixman-1.so.0` and resolves what the benchmark calls, or says why not.
    pub fn load() -> Result<Pixman, String> {
        // SAFETY: loading pixman runs only its (side-effect free) ELF
        // constructors; the library stays loaded as long as `Pixman` lives.
        let lib = unsafe { Library::new("libpixman-1.so.0") }.map_err(|e| e.to_string())?;
        fn sym<T: Copy>(lib: &Library, name: &[u8]) -> Result<T, String> {
            // SAFETY: every `T` used with this is the C prototype of the
            // named pixman function, as declared in pixman.h; the pointer is
            // used only while `Pixman` holds the library.
            unsafe { lib.get::<T>(name) }.map(|s| *s).map_err(|e| e.to_string())
        }
        let version: VersionString = sym(&lib, b"pixman_version_string\0")?;
        // SAFETY: pixman returns a static NUL-terminated string.
        let version = unsafe { std::ffi::CStr::from_ptr(version()) }.to_string_lossy().into_owned();
        Ok(Pixman {
            create_bits: sym(&lib, b"pixman_image_create_bits\0")?,
            create_solid: sym(&lib, b"pixman_image_create_solid_fill\0")?,
            unref: sym(&lib, b"pixman_image_unref\0")?,
            composite32: sym(&lib, b"pixman_image_composite32\0")?,
            set_transform: sym(&lib, b"pixman_image_set_transform\0")?,
            set_filter: sym(&lib, b"pixman_image_set_filter\0")?,
            set_repeat: sym(&lib, b"pixman_image_set_repeat\0")?,
            version,
            _lib: lib,
        })
    }

    /// A new, empty job.
    pub fn job(&self) -> Job<'_> {
        Job { px: self, images: Vec::new(), buffers: Vec::new(), steps: Vec::new() }
    }
}

/// Images over buffers the job owns, and composite steps over them: what
/// pixman does for one benchmark operation.
pub struct Job<'p> {
    px: &'p Pixman,
    /// Live pixman images, unreferenced on drop before `buffers` go.
    images: Vec<*mut c_void>,
    /// Each image's pixels (`None` for a solid fill). A Vec's heap block
    /// never moves while the Vec is not resized, and these never are.
    buffers: Vec<Option<Vec<u32>>>,
    steps: Vec<Step>,
}

/// An image of a [`Job`].
#[derive(Clone, Copy)]
pub struct Img(usize);

struct Step {
    op: u32,
    src: usize,
    mask: Option<usize>,
    dst: usize,
    rect: (i32, i32, i32, i32),
    src_at: (i32, i32),
}

impl Job<'_> {
    /// An image over `pixels`, `w` x `h` in `format`, rows packed.
    pub fn bits(&mut self, format: u32, w: i32, h: i32, mut pixels: Vec<u32>) -> Img {
        assert!(pixels.len() >= (w * h) as usize);
        // SAFETY: `pixels` holds `h` rows of `w` u32s; the Vec is kept in
        // `buffers`, never resized, and outlives the image (Drop unrefs
        // images first), so pixman never sees freed memory.
        let ptr = unsafe { (self.px.create_bits)(format, w, h, pixels.as_mut_ptr(), w * 4) };
        assert!(!ptr.is_null(), "pixman_image_create_bits failed");
        self.images.push(ptr);
        self.buffers.push(Some(pixels));
        Img(self.images.len() - 1)
    }

    /// A solid image of premultiplied alpha `a` (0..=1), for opacity masks.
    pub fn solid_alpha(&mut self, a: f64) -> Img {
        let c = Color { red: 0, green: 0, blue: 0, alpha: (a * 65535.0).round() as u16 };
        // SAFETY: `c` is a valid pixman_color_t; pixman copies it.
        let ptr = unsafe { (self.px.create_solid)(&c) };
        assert!(!ptr.is_null());
        self.images.push(ptr);
        self.buffers.push(None);
        Img(self.images.len() - 1)
    }

    /// Samples source image `i` scaled by `sx`, `sy` (destination pixel to
    /// source pixel), edges padded, with `filter`.
    pub fn scale(&mut self, i: Img, sx: f64, sy: f64, filter: u32) {
        self.transform(i, [[sx, 0.0, 0.0], [0.0, sy, 0.0]], filter);
    }

    /// Samples source image `i` at `m` × (x, y, 1) for destination pixel
    /// (x, y), edges padded, with `filter`.
    pub fn transform(&mut self, i: Img, m: [[f64; 3]; 2], filter: u32) {
        let f = |v: f64| (v * ONE as f64).round() as Fixed;
        let t = Transform {
            matrix: [[f(m[0][0]), f(m[0][1]), f(m[0][2])], [f(m[1][0]), f(m[1][1]), f(m[1][2])], [0, 0, ONE]],
        };
        let img = self.images[i.0];
        // SAFETY: `img` is a live image of this job; `t` is a valid
        // pixman_transform_t that pixman copies; no filter parameters.
        unsafe {
            (self.px.set_transform)(img, &t);
            (self.px.set_filter)(img, filter, std::ptr::null(), 0);
            (self.px.set_repeat)(img, REPEAT_PAD);
        }
    }

    /// Adds `pixman_image_composite32(op, src, mask, dst, ...)` over the
    /// destination rectangle (x, y, w, h), the source read from `src_at`.
    pub fn step(&mut self, op: u32, src: Img, mask: Option<Img>, dst: Img, rect: (i32, i32, i32, i32), src_at: (i32, i32)) {
        self.steps.push(Step { op, src: src.0, mask: mask.map(|m| m.0), dst: dst.0, rect, src_at });
    }

    /// Forgets the steps (the images stay).
    pub fn steps_clear(&mut self) {
        self.steps.clear();
    }

    /// Runs every step once, in order.
    pub fn run(&mut self) {
        for s in &self.steps {
            let m = s.mask.map_or(std::ptr::null_mut(), |m| self.images[m]);
            let (x, y, w, h) = s.rect;
            // SAFETY: all images are live; pixman clips the rectangle to the
            // destination's bounds.
            unsafe {
                (self.px.composite32)(s.op, self.images[s.src], m, self.images[s.dst], s.src_at.0, s.src_at.1, 0, 0, x, y, w, h)
            }
        }
    }

    /// Image `i`'s pixels.
    pub fn pixels(&self, i: Img) -> &[u32] {
        self.buffers[i.0].as_deref().unwrap_or(&[])
    }
}

impl Drop for Job<'_> {
    fn drop(&mut self) {
        for &img in &self.images {
            // SAFETY: each image was created by pixman and is unreferenced once,
            // before its buffer is freed.
            unsafe { (self.px.unref)(img) };
        }
    }
}
