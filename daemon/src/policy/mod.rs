//! Who may do what: approval prompts, agent keys and rate limits.

pub mod approval;
pub mod keys;
pub mod rate;
