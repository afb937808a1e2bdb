//! The HTTP-Signature `Authorization` header: never a panic; what parses
//! prints back (`to_header_value`) to a header that parses the same.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(params) = auth::parse_authorization(s) {
        let _ = params.algorithm();
        let again = auth::parse_authorization(&params.to_header_value()).expect("round trip");
        assert_eq!(again.to_header_value(), params.to_header_value());
    }
});
