//! AFL harness: `keyfob_fuzz::manifest` on each input.

fn main() {
    afl::fuzz!(|data: &[u8]| keyfob_fuzz::manifest(data));
}
