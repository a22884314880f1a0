//! What names a service: its engine, project and service, `engine/project/service`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The name of the engine a server reads when it is given none: the local socket's.
pub const LOCAL_ENGINE: &str = "local";

pub(crate) fn local_engine() -> String {
    LOCAL_ENGINE.to_owned()
}

/// A Compose service, named by its engine and its project and service labels.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ServiceKey {
    /// The `--engine` it runs on (`local` from servers before engines were named).
    #[serde(default = "local_engine")]
    pub engine: String,
    pub project: String,
    pub service: String,
}

impl ServiceKey {
    pub fn new(engine: &str, project: &str, service: &str) -> ServiceKey {
        ServiceKey {
            engine: engine.to_owned(),
            project: project.to_owned(),
            service: service.to_owned(),
        }
    }

    /// A service of the engine named `local`.
    pub fn local(project: &str, service: &str) -> ServiceKey {
        ServiceKey::new(LOCAL_ENGINE, project, service)
    }
}

/// `project/service` on the local engine, `engine/project/service` on any other: the short
/// form where it cannot be mistaken.
impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.engine != LOCAL_ENGINE {
            write!(f, "{}/", self.engine)?;
        }
        write!(f, "{}/{}", self.project, self.service)
    }
}
