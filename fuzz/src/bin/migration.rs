//! AFL harness: `keyfob_fuzz::migration` on each input.

fn main() {
    afl::fuzz!(|data: &[u8]| keyfob_fuzz::migration(data));
}
