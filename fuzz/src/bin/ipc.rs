//! AFL harness: `keyfob_fuzz::ipc` on each input.

fn main() {
    afl::fuzz!(|data: &[u8]| keyfob_fuzz::ipc(data));
}
