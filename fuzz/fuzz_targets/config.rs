//! Fuzz target: arbitrary bytes through the whole configuration front end (lexer,
//! conditional blocks, sections, keyword registry, validation). Nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = sluice::config::check_text("fuzz.cfg", &text);
});
