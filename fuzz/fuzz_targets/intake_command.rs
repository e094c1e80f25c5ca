//! `decode_command` (intake messages with `Allot-Kind: command`) on
//! arbitrary bytes: it never panics nor overflows the stack, and a command
//! it accepts survives re-encoding unchanged.
#![no_main]

use allot::wire::decode_command;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(command) = decode_command(data) {
        let bytes = rmp_serde::to_vec_named(&command).expect("a decoded command encodes");
        let again = decode_command(&bytes).expect("a re-encoded command decodes");
        assert_eq!(again, command, "the round trip changed the command");
    }
});
