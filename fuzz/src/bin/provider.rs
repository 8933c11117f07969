//! AFL harness: `keyfob_fuzz::provider` on each input.

fn main() {
    afl::fuzz!(|data: &[u8]| keyfob_fuzz::provider(data));
}
