//! Who may do what: enforcement of each method's declared need, approval prompts, agent keys,
//! the lock state machine and rate limits.

pub mod approval;
pub mod enforce;
pub mod keys;
pub mod lock;
pub mod rate;
