//! `keyfob-tray`: Keyfob's tray app. All logic lives in the library.

fn main() {
    keyfob_tray::run();
}
