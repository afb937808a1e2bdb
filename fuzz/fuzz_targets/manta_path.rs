//! Manta paths: meta's `MantaPath::parse` (the stored, decoded form) and
//! `MantaPath::new` on percent-decoded segments, which is what the
//! gateway's request-path parser (`gateway::path::parse_path`) does with a
//! request target. Never a panic; a path that parses prints back to a
//! string that parses to the same path.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meta::path::MantaPath;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(p) = MantaPath::parse(s) {
        let again = MantaPath::parse(&p.to_string()).expect("round trip");
        assert_eq!(again, p);
    }
    // The gateway's shape: split on `/`, drop empty segments, decode each.
    let segs: Option<Vec<String>> = s
        .split('/')
        .filter(|x| !x.is_empty())
        .map(|x| {
            let bytes: Vec<u8> = percent_encoding::percent_decode_str(x).collect();
            String::from_utf8(bytes).ok()
        })
        .collect();
    if let Some(mut segs) = segs {
        if !segs.is_empty() {
            let login = segs.remove(0);
            if let Ok(p) = MantaPath::new(&login, segs) {
                let again = MantaPath::parse(&p.to_string()).expect("round trip");
                assert_eq!(again, p);
            }
        }
    }
});
