//! twelvefa — 12fa's guest kit for Rust (abi v1), without dependencies.
//!
//! A step is an exported function that returns 0 (output set) or non-zero
//! (error set):
//!
//! ```ignore
//! use twelvefa as tfa;
//!
//! #[no_mangle]
//! pub extern "C" fn run() -> i32 {
//!     tfa::run(|env| {
//!         let name = env.get("input").get("name").as_str().unwrap_or("world").to_string();
//!         tfa::log(tfa::Level::Info, &format!("greeting {}", name));
//!         Ok(tfa::obj(vec![("greeting", tfa::Value::from(format!("Hi, {}!", name)))]))
//!     })
//! }
//! ```
//!
//! Build (Debian's rustc and libstd-rust-dev-wasm32; see README.md):
//! `rustc --edition 2021 --target wasm32-wasi --crate-type rlib -O src/lib.rs`.

pub mod json;

pub use json::{obj, Value};

mod raw {
    #[link(wasm_import_module = "extism:host/env")]
    extern "C" {
        pub fn input_length() -> u64;
        pub fn input_load_u8(off: u64) -> u32;
        pub fn input_load_u64(off: u64) -> u64;
        pub fn length(off: u64) -> u64;
        pub fn alloc(n: u64) -> u64;
        pub fn load_u8(off: u64) -> u32;
        pub fn load_u64(off: u64) -> u64;
        pub fn store_u8(off: u64, v: u32);
        pub fn store_u64(off: u64, v: u64);
        pub fn output_set(off: u64, n: u64);
        pub fn error_set(off: u64);
        pub fn config_get(key: u64) -> u64;
    }
    #[link(wasm_import_module = "12fa:v1")]
    extern "C" {
        pub fn ctx_get(key: u64) -> u64;
        pub fn ctx_set(key: u64, value: u64) -> u32;
        pub fn log(level: i32, msg: u64) -> u32;
        pub fn input_request(req: u64) -> u64;
        pub fn notify(doc: u64) -> u32;
        pub fn http(req: u64) -> u64;
        pub fn exec(req: u64) -> u64;
    }
}

fn put(b: &[u8]) -> u64 {
    unsafe {
        let off = raw::alloc(b.len() as u64);
        let mut i = 0;
        while i + 8 <= b.len() {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[i..i + 8]);
            raw::store_u64(off + i as u64, u64::from_le_bytes(w));
            i += 8;
        }
        while i < b.len() {
            raw::store_u8(off + i as u64, b[i] as u32);
            i += 1;
        }
        off
    }
}

fn get(off: u64) -> Vec<u8> {
    unsafe {
        let n = raw::length(off) as usize;
        let mut b = vec![0u8; n];
        let mut i = 0;
        while i + 8 <= n {
            b[i..i + 8].copy_from_slice(&raw::load_u64(off + i as u64).to_le_bytes());
            i += 8;
        }
        while i < n {
            b[i] = raw::load_u8(off + i as u64) as u8;
            i += 1;
        }
        b
    }
}

/// The call's raw input (the envelope).
pub fn input() -> Vec<u8> {
    unsafe {
        let n = raw::input_length() as usize;
        let mut b = vec![0u8; n];
        let mut i = 0;
        while i + 8 <= n {
            b[i..i + 8].copy_from_slice(&raw::input_load_u64(i as u64).to_le_bytes());
            i += 8;
        }
        while i < n {
            b[i] = raw::input_load_u8(i as u64) as u8;
            i += 1;
        }
        b
    }
}

/// Sets the step's output.
pub fn output(v: &Value) {
    let s = v.to_string();
    unsafe { raw::output_set(put(s.as_bytes()), s.len() as u64) }
}

/// The manifest's config value for key.
pub fn config(key: &str) -> Option<String> {
    let off = unsafe { raw::config_get(put(key.as_bytes())) };
    if off == 0 {
        return None;
    }
    String::from_utf8(get(off)).ok()
}

/// Log levels of abi v1.
#[derive(Clone, Copy)]
pub enum Level {
    Trace = 0,
    Debug = 1,
    Info = 2,
    Warn = 3,
    Error = 4,
}

/// Host statuses of abi v1.
pub const OK: u32 = 0;
pub const LIMITED: u32 = 1;
pub const DENIED: u32 = 2;

/// Writes a line to the step's log; LIMITED once over the per-attempt limits.
pub fn log(level: Level, msg: &str) -> u32 {
    unsafe { raw::log(level as i32, put(msg.as_bytes())) }
}

/// The workflow context's value under key, if any.
pub fn ctx_get(key: &str) -> Option<Value> {
    let off = unsafe { raw::ctx_get(put(key.as_bytes())) };
    if off == 0 {
        return None;
    }
    json::parse(&get(off)).ok()
}

/// Sets key in the workflow context (Value::Null deletes it); durable with
/// the step's result.
pub fn ctx_set(key: &str, v: &Value) -> u32 {
    let s = v.to_string();
    unsafe { raw::ctx_set(put(key.as_bytes()), put(s.as_bytes())) }
}

/// Asks a person a question. Returns the answer once given, None while
/// unanswered. Ask every question first, then return Err(Error::Waiting)
/// if any is unanswered.
pub fn ask(key: &str, question: &str, options: &[&str]) -> Option<String> {
    let mut req = vec![("key", Value::from(key)), ("question", Value::from(question))];
    if !options.is_empty() {
        req.push(("options", Value::Array(options.iter().map(|o| Value::from(*o)).collect())));
    }
    let s = obj(req).to_string();
    let resp = json::parse(&get(unsafe { raw::input_request(put(s.as_bytes())) })).unwrap_or(Value::Null);
    if resp.get("answered").as_bool() == Some(true) {
        return Some(resp.get("answer").as_str().unwrap_or("").to_string());
    }
    None
}

/// Sends a notification ({"title","message","priority","tags","click","actions"}).
pub fn notify(doc: &Value) -> u32 {
    let s = doc.to_string();
    unsafe { raw::notify(put(s.as_bytes())) }
}

/// Sends an HTTP request under the step's allow.hosts grant. req is the
/// request document ({"method","url","headers":{"name":["value"]},"body"});
/// the result is the response document ({"status","headers","body" or
/// "body_base64","url"}), whatever its status. When there is none (refused,
/// a network failure, a timeout, over the limits) it is Err with the
/// reason's code (http_denied, http_timeout …): return it, and the host
/// retries the step or not as that code says.
pub fn http(req: &Value) -> Result<Value, Error> {
    host_call(raw::http, req)
}

/// Runs one of the step's allow.commands (no shell). req is the request
/// document ({"command","args":[...],"cwd","env":{},"stdin","timeout"});
/// the result is {"exit_code","stdout","stderr","truncated","duration_ms"}
/// (a non-zero exit is a result), or Err with the reason's code when it
/// could not run (exec_denied, exec_timeout …).
pub fn exec(req: &Value) -> Result<Value, Error> {
    host_call(raw::exec, req)
}

/// Sends req's document to a host function that returns a result document,
/// and returns it, or its "error" as a coded error whose retry the code
/// decides.
fn host_call(f: unsafe extern "C" fn(u64) -> u64, req: &Value) -> Result<Value, Error> {
    let s = req.to_string();
    let resp = json::parse(&get(unsafe { f(put(s.as_bytes())) })).unwrap_or(Value::Null);
    let e = resp.get("error");
    if !e.is_null() {
        return Err(Error::Fail {
            code: e.get("code").as_str().unwrap_or("error").to_string(),
            message: e.get("message").as_str().unwrap_or("").to_string(),
            retryable: true, // unset in the document: the code decides
        });
    }
    Ok(resp)
}

/// What a step returns instead of an output.
#[derive(Debug)]
pub enum Error {
    /// A coded error; retryable: false tells the host never to retry it.
    Fail { code: String, message: String, retryable: bool },
    /// The step asked questions that have no answer yet: the run waits, and
    /// the step runs again once they are answered.
    Waiting,
}

/// A retryable coded error.
pub fn fail(code: &str, message: &str) -> Error {
    Error::Fail { code: code.into(), message: message.into(), retryable: true }
}

/// A coded error that must not be retried.
pub fn fail_permanent(code: &str, message: &str) -> Error {
    Error::Fail { code: code.into(), message: message.into(), retryable: false }
}

/// Decodes the envelope, calls f and hands its result to the host. Return
/// its value from the exported function.
pub fn run<F: FnOnce(&Value) -> Result<Value, Error>>(f: F) -> i32 {
    let env = match json::parse(&input()) {
        Ok(v) => v,
        Err(e) => return set_error(&fail_permanent("bad_envelope", &e)),
    };
    match f(&env) {
        Ok(v) => {
            output(&v);
            0
        }
        Err(Error::Waiting) => {
            output(&Value::Null);
            0
        }
        Err(e) => set_error(&e),
    }
}

fn set_error(e: &Error) -> i32 {
    if let Error::Fail { code, message, retryable } = e {
        let mut doc = vec![("code", Value::from(code.as_str())), ("message", Value::from(message.as_str()))];
        if !retryable {
            doc.push(("retryable", Value::Bool(false)));
        }
        let s = obj(doc).to_string();
        unsafe { raw::error_set(put(s.as_bytes())) }
    }
    1
}
