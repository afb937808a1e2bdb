//! Panics inside brush-parser are contained by `shell_syntax` (the parser
//! runs under `catch_unwind` on a thread of its own and a panic becomes a
//! `ScriptError`), so in the server they cost one rejected script. libFuzzer's
//! hook would abort on them anyway; this hook lets those through and aborts,
//! as before, on every other panic (ours, or one that escapes).

use std::sync::Once;

pub fn install() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let abort_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let third_party = info
                .location()
                .is_some_and(|l| l.file().contains("brush-parser"));
            let on_parser_thread = std::thread::current().name() == Some("shell-parse");
            if !(third_party && on_parser_thread) {
                abort_hook(info);
            }
        }));
    });
}
