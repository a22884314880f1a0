//! A follow stream the recording proxy can replay (`EngineRecorder::replay_open`), as an
//! engine that hands out a log it sent already (Docker's json-file reader re-reading a rotated
//! file): the stream stays open and sends only lines Lookout has delivered.
//!
//! The engine's answer to a follow is an HTTP head, then a chunked body of multiplexed frames
//! (8 bytes: the stream, three zeros, the length; then the line). The proxy decodes it and
//! sends it on a whole frame at a time, so that it can send frames again between any two.
//! A container with a TTY has no frames in its log: its follows are not to be made replayable.

use std::collections::VecDeque;
use std::io::{Error, ErrorKind};
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

use super::Proxied;

/// The frames kept to send again: the newest.
const KEPT_FRAMES: usize = 2_000;
/// The pause between two rounds of the frames kept.
const ROUND_PAUSE: Duration = Duration::from_millis(10);

/// Copies a follow stream's answer from the engine, `first` already read of it, until its
/// body ends (then the rest goes back to the caller to copy) or the connection does. Once
/// `conn` is replaying the engine's answer is no longer copied: the frames kept are sent again
/// and again until Lookout drops the connection. Once it is stalled, nothing more is sent.
pub(super) async fn copy_follow(
    from: &mut OwnedReadHalf,
    to: &mut OwnedWriteHalf,
    conn: &Proxied,
    first: &[u8],
) -> std::io::Result<Vec<u8>> {
    let mut raw = first.to_vec();
    let mut buf = vec![0u8; 16 * 1024];
    // The head goes on as it came; a body that is not chunked is not a follow's, and is
    // copied as it comes.
    let head_end = loop {
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return Ok(raw);
        }
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).to_ascii_lowercase();
    if !head.contains("transfer-encoding: chunked") {
        return Ok(raw);
    }
    to.write_all(&raw[..head_end]).await?;
    raw.drain(..head_end);
    let mut body = Body::default();
    loop {
        let ended = body.decode(&mut raw)?;
        let frames = body.whole_frames();
        if !frames.is_empty() {
            to.write_all(&chunk(&frames.concat())).await?;
        }
        if ended {
            to.write_all(b"0\r\n\r\n").await?;
            return Ok(raw);
        }
        tokio::select! {
            n = from.read(&mut buf) => match n? {
                0 => return Ok(Vec::new()),
                n => raw.extend_from_slice(&buf[..n]),
            },
            // A quiet stream is looked at now and then for the replay's start.
            _ = tokio::time::sleep(ROUND_PAUSE) => {}
        }
        if conn.stalled.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        if conn.replaying.load(Ordering::SeqCst) {
            return replay(to, &body.kept).await;
        }
    }
}

/// Sends `frames` again and again until Lookout drops the connection (`EngineRecorder` counts
/// that).
async fn replay(to: &mut OwnedWriteHalf, frames: &VecDeque<Vec<u8>>) -> std::io::Result<Vec<u8>> {
    if frames.is_empty() {
        // An empty chunk would end the body: nothing to send again is a stall.
        std::future::pending::<()>().await;
    }
    let again = chunk(&frames.iter().flatten().copied().collect::<Vec<u8>>());
    loop {
        to.write_all(&again).await?;
        tokio::time::sleep(ROUND_PAUSE).await;
    }
}

/// A chunked body taken apart into frames.
#[derive(Default)]
struct Body {
    /// The chunks' data not yet taken as whole frames.
    data: Vec<u8>,
    /// The newest frames sent on, to send again.
    kept: VecDeque<Vec<u8>>,
}

impl Body {
    /// Takes the whole chunks off the front of `raw`; true once the last (empty) one came.
    /// The engine sends no trailers after it.
    fn decode(&mut self, raw: &mut Vec<u8>) -> std::io::Result<bool> {
        loop {
            let Some(line_end) = raw.windows(2).position(|w| w == b"\r\n") else {
                return Ok(false);
            };
            let line = String::from_utf8_lossy(&raw[..line_end]);
            let size = line.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size, 16).map_err(|e| {
                Error::new(ErrorKind::InvalidData, format!("chunk size {line:?}: {e}"))
            })?;
            if size == 0 {
                // The last chunk, and the empty line that ends the body.
                if raw.len() < line_end + 4 {
                    return Ok(false);
                }
                raw.drain(..line_end + 4);
                return Ok(true);
            }
            let start = line_end + 2;
            if raw.len() < start + size + 2 {
                return Ok(false);
            }
            self.data.extend_from_slice(&raw[start..start + size]);
            raw.drain(..start + size + 2);
        }
    }

    /// The whole frames decoded so far, kept for a replay.
    fn whole_frames(&mut self) -> Vec<Vec<u8>> {
        let mut frames = Vec::new();
        let mut at = 0;
        while self.data.len() >= at + 8 {
            let len = u32::from_be_bytes(self.data[at + 4..at + 8].try_into().expect("4 bytes"));
            let end = at + 8 + len as usize;
            if self.data.len() < end {
                break;
            }
            frames.push(self.data[at..end].to_vec());
            at = end;
        }
        self.data.drain(..at);
        for frame in &frames {
            if self.kept.len() == KEPT_FRAMES {
                self.kept.pop_front();
            }
            self.kept.push_back(frame.clone());
        }
        frames
    }
}

fn chunk(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out
}
