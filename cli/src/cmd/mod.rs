//! One module per command group.

pub mod completions;
pub mod daemon;
pub mod otp;
pub mod secret;
