//! Who a build is: its project and number, where its parts are stored, and who writes it.

use app::protocol::Replica;

use super::BUILD_ENGINE;
use crate::store::Owner;

/// Who writes a build: only the writer who began it may add to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Writer {
    /// An API token made with `--write`, by its name.
    Token(String),
    /// A client on this machine's loopback, under `--auth none`.
    Loopback,
}

/// One build: its project, and its number there.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BuildId {
    pub project: String,
    pub number: u64,
}

impl BuildId {
    /// Who its lines under `service` (empty: the project's own), the `part`-th service it
    /// touched, are stored as: history keeps a container's lines by its id, so each part
    /// has its own, hex like an engine's (cursors carry it), the build's number first.
    pub(super) fn owner(&self, service: &str, part: usize) -> Owner {
        Owner {
            engine: BUILD_ENGINE.to_owned(),
            project: self.project.clone(),
            service: service.to_owned(),
            container: format!(
                "{:08x}{:04x}{:016x}",
                self.number,
                part,
                project_hash(&self.project)
            ),
            replica: Replica {
                number: 1,
                name: format!("build #{}", self.number),
            },
        }
    }
}

/// FNV-1a of a project's name: in a part's container id, so that builds of two projects
/// with the same number are apart in the store, which keys lines by container id.
fn project_hash(project: &str) -> u64 {
    project.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A name a build may be stored under: Compose's service names.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.len() <= 128
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// The build a stored part's container id is of (`BuildId::owner`).
pub(super) fn number_of(container: &str) -> Option<u64> {
    u64::from_str_radix(container.get(..8)?, 16).ok()
}
