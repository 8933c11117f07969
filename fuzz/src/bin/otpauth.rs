//! AFL harness: `keyfob_fuzz::otpauth` on each input.

fn main() {
    afl::fuzz!(|data: &[u8]| keyfob_fuzz::otpauth(data));
}
