//! Every engine read, by name: each followed, reconnected and reported on its own, so that
//! one that is down never delays the others.

use std::collections::BTreeMap;
use std::sync::Arc;

use app::protocol::{EngineStatus, LOCAL_ENGINE};

use super::address::EngineSpec;
use super::Engine;

#[derive(Clone)]
pub struct Engines {
    all: Arc<BTreeMap<String, Engine>>,
    /// What a request that names no engine means.
    default: String,
}

impl Engines {
    /// Starts watching each engine. The default is the only engine, else `local`, else the
    /// first named on the command line. An ssh engine sets up at most `ssh_handshakes`
    /// connections at once.
    pub fn start(specs: Vec<EngineSpec>, ssh_handshakes: usize) -> Engines {
        let first = specs.first().map(|s| s.name.clone()).unwrap_or_default();
        let all: BTreeMap<String, Engine> = specs
            .into_iter()
            .map(|s| (s.name.clone(), Engine::start(s, ssh_handshakes)))
            .collect();
        let default = if all.contains_key(LOCAL_ENGINE) && all.len() > 1 {
            LOCAL_ENGINE.to_owned()
        } else {
            first
        };
        Engines {
            all: Arc::new(all),
            default,
        }
    }

    /// The engine named `name`.
    pub fn get(&self, name: &str) -> Option<&Engine> {
        self.all.get(name)
    }

    /// The engines, in name order.
    pub fn iter(&self) -> impl Iterator<Item = &Engine> {
        self.all.values()
    }

    /// The name a request means: the one it gives, or the default.
    pub fn name_or_default(&self, asked: Option<String>) -> String {
        asked.unwrap_or_else(|| self.default.clone())
    }

    pub fn default_engine(&self) -> &Engine {
        self.all
            .get(&self.default)
            .expect("the default engine is one of them")
    }

    /// Every engine's status, in name order.
    pub fn statuses(&self) -> Vec<EngineStatus> {
        self.iter().map(|e| e.status().borrow().clone()).collect()
    }
}
