//! One module per command group.

pub mod access;
pub mod account;
pub mod audit;
pub mod aws;
pub mod completions;
pub mod daemon;
pub mod docker;
pub mod git;
pub mod kube;
pub mod login;
pub mod otp;
pub mod run;
pub mod secret;
pub mod service;
pub mod setup;
pub mod token;
