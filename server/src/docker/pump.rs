//! Where log responses are read: on a few threads of their own, each a runtime of one thread,
//! from which their frames are handed to whoever reads the log.
//!
//! The engine sends a log one entry per HTTP chunk, and hyper hands a response's body over
//! one chunk at a time: its connection task decodes a chunk, wakes the reader, and decodes
//! the next only once the reader took it. On tokio's multi-thread runtime the two tasks wake
//! each other across its threads for every entry; on a runtime of one thread each wake is a
//! push onto a local queue. The same follow stream, read on two cores with nothing done with
//! its lines, came at about 30,000 entries a second the one way and 80,000 the other (`docker
//! logs -f` beside it: 45,000; `examples/follow_read.rs`). The client opens each request's
//! connection on the runtime that sends it and keeps no idle connection to reuse (but over
//! ssh, where one may be reused), so a request sent from a pump is read by its own thread.
//!
//! A pump takes each frame as it comes and queues it for the reader, up to `--read-ahead-bytes`
//! of frames (or one frame larger): while the reader works on what it took, the next frames
//! wait there, not in the engine. Once the queue is full the pump waits for room, and the
//! engine holds the log meanwhile.

use std::future::Future;
use std::sync::{Arc, OnceLock};

use futures::{Stream, StreamExt};
use tokio::runtime::{Builder, Handle};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

/// More threads than this would take cores from the sockets' runtime and from history's
/// writer for log reads that seldom all run at once.
const MOST_THREADS: usize = 4;

/// The frames of `frames` (a request not sent yet), read on a pump thread at most
/// `read_ahead` bytes ahead, as `bytes` counts a frame. Dropping what this returns ends the
/// read and closes its connection.
pub fn pumped<T>(
    frames: impl Stream<Item = T> + Send + 'static,
    read_ahead: usize,
    bytes: fn(&T) -> usize,
) -> impl Stream<Item = T> + Send
where
    T: Send + 'static,
{
    let room = Arc::new(Semaphore::new(read_ahead.clamp(1, Semaphore::MAX_PERMITS)));
    let (to_reader, mut from_pump) = mpsc::unbounded_channel::<(T, OwnedSemaphorePermit)>();
    threads().spawn(pump(frames, room, bytes, to_reader));
    // The frame's room is given back as the reader takes it.
    futures::stream::poll_fn(move |cx| {
        from_pump
            .poll_recv(cx)
            .map(|queued| queued.map(|(frame, _room)| frame))
    })
}

async fn pump<T>(
    frames: impl Stream<Item = T>,
    room: Arc<Semaphore>,
    bytes: fn(&T) -> usize,
    to_reader: mpsc::UnboundedSender<(T, OwnedSemaphorePermit)>,
) {
    let mut frames = std::pin::pin!(frames);
    let most = room.available_permits();
    loop {
        let frame = tokio::select! {
            frame = frames.next() => frame,
            // A quiet follow stream would hold its connection until its next entry.
            () = to_reader.closed() => return,
        };
        let Some(frame) = frame else { return };
        // A frame larger than the whole queue waits for it to be empty.
        let takes = u32::try_from(bytes(&frame).clamp(1, most)).unwrap_or(u32::MAX);
        let queued = tokio::select! {
            queued = room.clone().acquire_many_owned(takes) => queued,
            () = to_reader.closed() => return,
        };
        let queued = queued.expect("the queue's room is never closed");
        if to_reader.send((frame, queued)).is_err() {
            return;
        }
    }
}

/// The pump threads, started at the first read.
fn threads() -> &'static Threads {
    static THREADS: OnceLock<Threads> = OnceLock::new();
    THREADS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Threads::start(cores.min(MOST_THREADS))
    })
}

struct Threads {
    threads: Vec<Handle>,
}

impl Threads {
    /// `count` threads, at least one. A thread that cannot be started is a machine out of
    /// threads, where nothing else would start either.
    fn start(count: usize) -> Threads {
        let threads = (0..count.max(1))
            .map(|n| start_thread(n).expect("starting a thread to read the engine's logs"))
            .collect();
        Threads { threads }
    }

    /// Runs `task` on the thread running the fewest tasks (pumps, and the connections they
    /// read).
    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let thread = self
            .threads
            .iter()
            .min_by_key(|t| t.metrics().num_alive_tasks())
            .expect("at least one thread");
        thread.spawn(task);
    }
}

fn start_thread(n: usize) -> std::io::Result<Handle> {
    let runtime = Builder::new_current_thread().enable_all().build()?;
    let handle = runtime.handle().clone();
    std::thread::Builder::new()
        .name(format!("lookout-pump-{n}"))
        .spawn(move || runtime.block_on(std::future::pending::<()>()))?;
    Ok(handle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;
    use tokio::runtime::RuntimeFlavor;
    use tokio::sync::oneshot;

    /// The thread a stream was first polled on, and its runtime's kind, as its one item.
    fn whereabouts() -> impl Stream<Item = (String, RuntimeFlavor)> {
        futures::stream::once(async {
            let thread = std::thread::current().name().unwrap_or("").to_owned();
            (thread, Handle::current().runtime_flavor())
        })
    }

    #[tokio::test]
    async fn a_pumped_stream_is_read_on_a_pump_thread_of_one_thread_runtime() {
        let mut frames = pumped(whereabouts(), 1 << 20, |_| 1);
        let (thread, flavor) = frames.next().await.unwrap();
        assert!(thread.starts_with("lookout-pump-"), "read on {thread:?}");
        assert_eq!(flavor, RuntimeFlavor::CurrentThread);
        assert!(frames.next().await.is_none(), "the end is handed on");
    }

    #[tokio::test]
    async fn reads_running_together_are_spread_over_the_threads() {
        // Threads of this test's own: the shared ones run other tests' pumps meanwhile.
        let threads = Threads::start(3);
        let mut placed = Vec::new();
        let mut ends = Vec::new();
        for _ in 0..6 {
            let (at, placed_at) = oneshot::channel();
            let (end, ended) = oneshot::channel::<()>();
            threads.spawn(async move {
                let _ = at.send(std::thread::current().name().unwrap_or("").to_owned());
                let _ = ended.await;
            });
            placed.push(placed_at.await.expect("the task ran"));
            ends.push(end);
        }
        let distinct: HashSet<&String> = placed.iter().collect();
        assert_eq!(distinct.len(), 3, "{placed:?}");
        for name in &distinct {
            assert_eq!(placed.iter().filter(|p| p == name).count(), 2, "{placed:?}");
        }
    }

    /// Frames of 100 bytes each, `count` of them, numbered; and how many were read.
    fn numbered(count: usize) -> (impl Stream<Item = Vec<u8>>, Arc<AtomicUsize>) {
        let read = Arc::new(AtomicUsize::new(0));
        let counted = read.clone();
        let frames = futures::stream::iter(0..count).map(move |i| {
            counted.fetch_add(1, Ordering::SeqCst);
            let mut frame = vec![0u8; 100];
            frame[..8].copy_from_slice(&(i as u64).to_le_bytes());
            frame
        });
        (frames, read)
    }

    fn number(frame: &[u8]) -> usize {
        u64::from_le_bytes(frame[..8].try_into().unwrap()) as usize
    }

    #[tokio::test]
    async fn a_pump_reads_ahead_at_most_its_bytes() {
        // Room for 10 frames of 100 bytes.
        let (frames, read) = numbered(100);
        let mut pumped = pumped(frames, 1000, |f: &Vec<u8>| f.len());
        assert_eq!(pumped.next().await.map(|f| number(&f)), Some(0));
        // The pump fills the queue (10 frames) and holds one more while it waits for room.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while read.load(Ordering::SeqCst) < 12 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Nothing more comes while the reader takes nothing.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(read.load(Ordering::SeqCst), 12);
        let rest: Vec<usize> = pumped.map(|f| number(&f)).collect().await;
        assert_eq!(rest, (1..100).collect::<Vec<_>>(), "every frame, in order");
    }

    #[tokio::test]
    async fn a_frame_larger_than_the_read_ahead_goes_alone() {
        let frames = futures::stream::iter([vec![1u8; 5000], vec![2u8; 10]]);
        let got: Vec<Vec<u8>> = pumped(frames, 1000, |f: &Vec<u8>| f.len()).collect().await;
        assert_eq!(got, [vec![1u8; 5000], vec![2u8; 10]]);
    }

    #[tokio::test]
    async fn dropping_the_frames_ends_a_quiet_read() {
        let (holds, released) = oneshot::channel::<()>();
        let quiet = futures::stream::once(async move {
            let _holds = holds;
            std::future::pending::<()>().await;
        });
        drop(pumped(quiet, 1 << 20, |_: &()| 1));
        // The pump dropped the stream, and with it a request's connection.
        let ended = tokio::time::timeout(Duration::from_secs(10), released).await;
        assert!(matches!(ended, Ok(Err(_))), "the quiet read still runs");
    }
}
