//! History on disk (issue 10): every line Lookout reads, kept for days in compressed blocks,
//! so that logs outlive their containers. Built room by room; `block` is the first.

pub mod block;
