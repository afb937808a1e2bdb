//! The phase-script parser: any bytes get an answer (a script or a
//! `ScriptError`), never a panic, a stack overflow or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "contained_panics.rs"]
mod contained_panics;

fuzz_target!(|data: &[u8]| {
    contained_panics::install();
    if let Ok(src) = std::str::from_utf8(data) {
        if let Ok(script) = shell_syntax::parse(src) {
            // What the sandbox does with a parsed script must hold too.
            let _ = script.max_pipeline();
        }
    }
});
