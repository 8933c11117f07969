//! Who may do what: rate limits now; client rules, approvals and agent keys build here.

pub mod rate;
