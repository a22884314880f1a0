//! Where a container's log and state are read from: the engine that runs it, or, for a
//! Swarm task whose container runs on another node, the manager's task API. A manager holds
//! no other node's containers, but hands out their tasks' logs (`/tasks/{id}/logs`) and
//! states (`/tasks/{id}`).

use app::protocol::ContainerInfo;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source<'a> {
    /// A container of the engine read, by id.
    Container(&'a str),
    /// A Swarm task, by id, read through the manager.
    Task(&'a str),
}

impl<'a> Source<'a> {
    pub fn of(c: &'a ContainerInfo) -> Source<'a> {
        match &c.task {
            Some(task) => Source::Task(task),
            None => Source::Container(&c.id),
        }
    }

    /// A task's log stream never ends by itself, not even once the task has: its end is
    /// learnt from the task's state.
    pub fn ends_with_its_run(self) -> bool {
        matches!(self, Source::Container(_))
    }
}
