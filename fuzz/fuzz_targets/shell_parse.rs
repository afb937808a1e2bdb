//! The phase-script parser: any bytes get an answer (a script or a
//! `ScriptError`), never a panic, a stack overflow or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(src) = std::str::from_utf8(data) {
        if let Ok(script) = shell_syntax::parse(src) {
            // What the sandbox does with a parsed script must hold too.
            let _ = script.max_pipeline();
        }
    }
});
