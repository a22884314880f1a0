//! What history answers: a page of a service's past, and search hits across services.
//! Shared by the server, which reads them from its store, and the web app.

use serde::{Deserialize, Serialize};

use crate::protocol::{Cursor, Lifecycle, LogLine};

/// Most lines or hits one history or search request returns.
pub const MAX_PAGE: u32 = 5_000;
/// Lines or hits returned when a request does not say.
pub const DEFAULT_PAGE: u32 = 500;

/// `GET /api/history`: lines of one service in time order, the changes in its containers'
/// lives within their span, and where to page on from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryPage {
    pub lines: Vec<LogLine>,
    pub events: Vec<Lifecycle>,
    /// Ask again with `before=` this for older lines; null when there are none.
    pub before: Option<Cursor>,
    /// Ask again with `after=` this for newer lines; null when there are none.
    pub after: Option<Cursor>,
}

/// One line a search found, and whose it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchHit {
    pub project: String,
    pub service: String,
    pub line: LogLine,
}

/// `GET /api/search`: hits newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchPage {
    pub hits: Vec<SearchHit>,
    /// Ask again with `before=` this for older hits; null when the search is complete.
    pub before: Option<Cursor>,
    /// Stored lines read to answer.
    pub scanned: u64,
}
