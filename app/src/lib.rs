//! Lookout's web client (feature `csr`) and what it shares with the server: the wire
//! protocol and the server functions.

pub mod api;
pub mod protocol;

#[cfg(feature = "csr")]
pub mod ui;
