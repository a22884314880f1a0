//! The engine's latest `die` events: how a container ended, still known after Compose has
//! removed it, which it does right after stopping it.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

#[derive(Default)]
pub struct Exits(Mutex<VecDeque<(String, Exit)>>);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exit {
    pub ts_ns: i64,
    pub code: Option<i64>,
}

impl Exits {
    /// Containers whose exit is remembered; the oldest is forgotten first.
    const KEPT: usize = 1024;

    pub fn record(&self, id: String, exit: Exit) {
        let mut exits = self.0.lock().expect("exits lock");
        if exits.len() >= Self::KEPT {
            exits.pop_front();
        }
        exits.push_back((id, exit));
    }

    fn latest(&self, id: &str) -> Option<Exit> {
        let exits = self.0.lock().expect("exits lock");
        exits.iter().rev().find(|(i, _)| i == id).map(|(_, e)| *e)
    }

    /// The exit of `id` at or after `since`, waiting a moment for its event to be read.
    pub async fn wait_for(&self, id: &str, since: Option<i64>) -> Option<Exit> {
        for _ in 0..20 {
            if let Some(e) = self
                .latest(id)
                .filter(|e| since.is_none_or(|s| e.ts_ns >= s))
            {
                return Some(e);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exit(ts_ns: i64, code: i64) -> Exit {
        Exit {
            ts_ns,
            code: Some(code),
        }
    }

    #[tokio::test]
    async fn the_latest_exit_of_a_run_is_found_and_an_older_one_is_not() {
        let exits = Exits::default();
        exits.record("a".into(), exit(10, 1));
        exits.record("b".into(), exit(15, 0));
        exits.record("a".into(), exit(20, 137));
        assert_eq!(exits.wait_for("a", Some(12)).await, Some(exit(20, 137)));
        assert_eq!(exits.wait_for("b", None).await, Some(exit(15, 0)));
        // A run that started after its container's last exit has not exited yet.
        assert_eq!(exits.wait_for("a", Some(21)).await, None);
    }

    #[tokio::test]
    async fn the_oldest_exits_are_forgotten_first() {
        let exits = Exits::default();
        for i in 0..=Exits::KEPT as i64 {
            exits.record(format!("c{i}"), exit(i, 0));
        }
        assert_eq!(exits.latest("c0"), None);
        assert_eq!(exits.latest("c1"), Some(exit(1, 0)));
    }
}
