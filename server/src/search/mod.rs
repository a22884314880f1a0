//! Searching logs: the query language people type, and what a query matches. The store of
//! history it will search is the next room to build (issue 10).

pub mod query;
