//! AFL harness: `keyfob_fuzz::vault_file` on each input.

fn main() {
    afl::fuzz!(|data: &[u8]| keyfob_fuzz::vault_file(data));
}
