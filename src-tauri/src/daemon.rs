//! The link to keyfobd: keyfob-proto's approver link, which the resident tray icon
//! (keyfob-tray-resident) shares.

pub use keyfob_proto::approver::{Connection, Heard, Link, run};

/// The name the window app gives in `hello`.
pub const CLIENT: &str = "keyfob-tray";
