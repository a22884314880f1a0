//! Lookout's web client (feature `csr`) and what it shares with the server: the wire
//! protocol, the server functions, and the pure parts of the viewer (ANSI parsing, the
//! filter engine, the line buffer, the download format), which are tested natively.

pub mod ansi;
pub mod api;
pub mod asks;
pub mod buffer;
pub mod build_log;
pub mod builds;
pub mod cursor;
pub mod decode;
pub mod export;
pub mod filter;
pub mod history;
pub mod json;
pub mod levels;
pub mod multiline;
pub mod needle;
pub mod protocol;
pub mod service_key;
pub mod target;
pub mod wire_lines;

#[cfg(feature = "csr")]
pub mod ui;
