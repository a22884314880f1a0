//! Lookout's server: it serves the web client, its server functions and the live-log
//! WebSocket, and reads everything from the Docker engine, which it never writes to.
//!
//! A log line travels one way, and the modules are its stops:
//!
//! - `docker/`: the only code that talks to the engine (listing, logs, events, inspect,
//!   one-off reads of the past), and `redact` applied to every line read;
//! - `level`: the level a line states, found once on the server;
//! - `runs`: where a container's starts and exits fall among its lines (pure);
//! - `seen`: which lines of a container were taken, so that a re-read repeats none;
//! - `hub/`: one follower per container, a ring and a tape per service, subscriptions;
//! - the routes: `ws` (the live socket), `api` (server functions: listing, tails),
//!   `download`, `health`, `assets` (the embedded client);
//! - at the edge, before any route: `host` (the Host allow-list), `auth/` (who is asking,
//!   scopes, logins), `origin` (CSRF), `headers` (CSP and friends on the way out);
//! - `builds/`: builds captured by `lookout capture`, kept in history beside the services;
//! - `cli`: `lookout logs`, the same binary as a client of a running server, over the
//!   documented protocol only;
//! - `config` (every setting), `state` (what each handler may reach), `serve` (the start),
//!   `clock` (instants as the engine stamps them).
//!
//! `ARCHITECTURE.md` at the repository's root is the longer map.

pub mod api;
pub mod assets;
pub mod auth;
pub mod builds;
pub mod cli;
pub mod clock;
pub mod config;
pub mod docker;
pub mod download;
pub mod headers;
pub mod health;
pub mod histogram;
pub mod history;
pub mod host;
pub mod hub;
pub mod level;
pub mod line;
pub mod origin;
pub mod permits;
pub mod recall;
pub mod redact;
pub mod runs;
pub mod search;
pub mod seen;
pub mod serve;
pub mod state;
pub mod store;
pub mod ws;

pub use serve::run;
