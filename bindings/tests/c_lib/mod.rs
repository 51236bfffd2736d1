//! `libact_core.so` loaded with dlopen, exactly as a C program would use it, and the helpers
//! every C ABI test shares (open, info, inputs, the handle's and the thread's last error).
#![allow(non_camel_case_types, dead_code, clippy::missing_transmute_annotations, clippy::type_complexity)]

#[path = "../../src/types.rs"]
pub mod types;

use crate::common::{self, image, Tiny};
use core::ffi::{c_char, c_int, c_void, CStr};
use std::ffi::CString;
use std::sync::OnceLock;
use types::act_status::{self, *};
use types::*;

unsafe extern "C" {
    fn dlopen(filename: *const c_char, flag: c_int) -> *mut c_void;
    fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
    fn dlerror() -> *const c_char;
}
pub const RTLD_NOW: c_int = 2;

pub type Input = unsafe extern "C" fn(*mut act_policy, *const f32, usize, *const act_image, usize, *mut f32, usize) -> act_status;

/// Opaque handle type, as in C.
#[repr(C)]
pub struct act_policy {
    _private: [u8; 0],
}

pub struct Lib {
    pub options_default: unsafe extern "C" fn() -> act_options,
    pub open: unsafe extern "C" fn(*const c_char, *const act_options, *mut *mut act_policy) -> act_status,
    pub open_bytes: unsafe extern "C" fn(*const u8, usize, *const act_options, *mut *mut act_policy) -> act_status,
    pub free: unsafe extern "C" fn(*mut act_policy) -> act_status,
    pub info: unsafe extern "C" fn(*const act_policy, *mut act_info) -> act_status,
    pub kernels: unsafe extern "C" fn(*const act_policy, *mut act_kernels, *mut c_char, usize) -> act_status,
    pub camera: unsafe extern "C" fn(*const act_policy, usize, *mut act_camera) -> act_status,
    pub step: Input,
    pub predict: Input,
    pub reset: unsafe extern "C" fn(*mut act_policy) -> act_status,
    pub set_env: unsafe extern "C" fn(*mut act_policy, *const f32, usize) -> act_status,
    pub async_status: unsafe extern "C" fn(*const act_policy, *mut act_async_status) -> act_status,
    pub policy_last_error: unsafe extern "C" fn(*const act_policy) -> *const c_char,
    pub last_error: unsafe extern "C" fn() -> *const c_char,
    pub status_string: unsafe extern "C" fn(c_int) -> *const c_char,
    pub version: unsafe extern "C" fn() -> *const c_char,
}

pub fn lib() -> &'static Lib {
    static LIB: OnceLock<Lib> = OnceLock::new();
    LIB.get_or_init(|| unsafe {
        let path = common::built_library("libact_core.so");
        let cpath = CString::new(path.to_str().unwrap()).unwrap();
        let h = dlopen(cpath.as_ptr(), RTLD_NOW);
        assert!(!h.is_null(), "dlopen {}: {:?}", path.display(), CStr::from_ptr(dlerror()));
        let sym = |name: &str| {
            let c = CString::new(name).unwrap();
            let p = dlsym(h, c.as_ptr());
            assert!(!p.is_null(), "libact_core.so does not export {name}");
            p
        };
        macro_rules! f {
            ($name:literal) => {
                std::mem::transmute(sym($name))
            };
        }
        Lib {
            options_default: f!("act_options_default"),
            open: f!("act_policy_open"),
            open_bytes: f!("act_policy_open_bytes"),
            free: f!("act_policy_free"),
            info: f!("act_policy_info"),
            kernels: f!("act_policy_kernels"),
            camera: f!("act_policy_camera"),
            step: f!("act_policy_step"),
            predict: f!("act_policy_predict_chunk"),
            reset: f!("act_policy_reset"),
            set_env: f!("act_policy_set_environment_state"),
            async_status: f!("act_policy_async_status"),
            policy_last_error: f!("act_policy_last_error"),
            last_error: f!("act_last_error"),
            status_string: f!("act_status_string"),
            version: f!("act_version"),
        }
    })
}

pub fn text(p: *const c_char) -> String {
    assert!(!p.is_null());
    unsafe { CStr::from_ptr(p) }.to_str().unwrap().to_owned()
}

pub fn last_error() -> String {
    text(unsafe { (lib().last_error)() })
}

pub fn handle_error(p: *const act_policy) -> String {
    text(unsafe { (lib().policy_last_error)(p) })
}

pub fn defaults() -> act_options {
    unsafe { (lib().options_default)() }
}

/// Open from bytes; Err((status, message)) on failure, after checking `*out` was set to NULL.
pub fn open_bytes(bytes: &[u8], options: Option<&act_options>) -> Result<*mut act_policy, (act_status, String)> {
    let mut p = core::ptr::dangling_mut::<act_policy>(); // not NULL: a failed open must clear it
    let opt = options.map_or(core::ptr::null(), |o| o as *const _);
    let s = unsafe { (lib().open_bytes)(bytes.as_ptr(), bytes.len(), opt, &mut p) };
    if s == ACT_OK {
        assert!(!p.is_null());
        Ok(p)
    } else {
        assert!(p.is_null(), "a failed open must leave *out NULL");
        Err((s, last_error()))
    }
}

pub fn open_path(path: &std::path::Path, options: Option<&act_options>) -> Result<*mut act_policy, (act_status, String)> {
    let c = CString::new(path.to_str().unwrap()).unwrap();
    let mut p = core::ptr::null_mut();
    let opt = options.map_or(core::ptr::null(), |o| o as *const _);
    match unsafe { (lib().open)(c.as_ptr(), opt, &mut p) } {
        ACT_OK => Ok(p),
        s => {
            assert!(p.is_null());
            Err((s, last_error()))
        }
    }
}

pub fn free(p: *mut act_policy) {
    assert_eq!(unsafe { (lib().free)(p) }, ACT_OK);
}

pub fn info(p: *const act_policy) -> act_info {
    let mut i = unsafe { core::mem::zeroed::<act_info>() };
    assert_eq!(unsafe { (lib().info)(p, &mut i) }, ACT_OK, "{}", handle_error(p));
    i
}

/// `act_policy_kernels` with a note buffer large enough for any note.
pub fn kernels(p: *const act_policy) -> (act_kernels, String) {
    let mut k = act_kernels::default();
    let mut note = [0 as c_char; 512];
    assert_eq!(unsafe { (lib().kernels)(p, &mut k, note.as_mut_ptr(), note.len()) }, ACT_OK, "{}", handle_error(p));
    (k, text(note.as_ptr()))
}

/// Inputs for the two-camera tiny policy.
pub struct Inputs {
    pub qpos: Vec<f32>,
    pub imgs: Vec<Vec<u8>>,
    pub views: Vec<act_image>,
}

pub fn inputs(t: &Tiny, seed: u64) -> Inputs {
    let imgs: Vec<Vec<u8>> = t.cameras.iter().enumerate().map(|(i, &(_, h, w))| image(h, w, seed + i as u64)).collect();
    let views = imgs.iter().zip(&t.cameras).map(|(v, &(_, h, w))| act_image { data: v.as_ptr(), height: h, width: w }).collect();
    let qpos = (0..t.state).map(|j| 0.05 * j as f32 - 0.3 + 0.01 * seed as f32).collect();
    Inputs { qpos, imgs, views }
}

pub fn call(f: Input, p: *mut act_policy, i: &Inputs, out: &mut [f32]) -> act_status {
    unsafe { f(p, i.qpos.as_ptr(), i.qpos.len(), i.views.as_ptr(), i.views.len(), out.as_mut_ptr(), out.len()) }
}

pub fn two_cameras() -> Tiny {
    let mut t = Tiny::new();
    t.cameras = vec![("top", 64, 64), ("left_wrist", 48, 80)];
    t
}
