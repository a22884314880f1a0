//! What a client sends, read: a request, or why it is not one, and the `id` its answer
//! echoes.

use app::protocol::{ClientMessage, ErrorCode};

/// Reads a client message, telling apart what is not a message at all (`bad_message`) from a
/// known message with a field out of bounds (`bad_request`).
/// A request's `id` is read first, so that even a refusal of it names the request.
pub fn read_message(text: &str) -> (Option<u32>, Result<ClientMessage, (ErrorCode, String)>) {
    let value = match serde_json::from_str::<serde_json::Value>(text) {
        Ok(v) => v,
        Err(e) => return (None, Err((ErrorCode::BadMessage, format!("not JSON: {e}")))),
    };
    let id = value
        .get("id")
        .and_then(serde_json::Value::as_u64)
        .and_then(|id| u32::try_from(id).ok());
    (id, read_value(value))
}

fn read_value(value: serde_json::Value) -> Result<ClientMessage, (ErrorCode, String)> {
    const KNOWN: [&str; 3] = ["subscribe", "subscribe_project", "unsubscribe"];
    let kind = value
        .get("type")
        .and_then(|t| t.as_str())
        .map(str::to_owned)
        .ok_or_else(|| {
            (
                ErrorCode::BadMessage,
                "a message is a JSON object with a \"type\" field".to_owned(),
            )
        })?;
    if !KNOWN.contains(&kind.as_str()) {
        let kind: String = kind.chars().take(50).collect();
        return Err((
            ErrorCode::BadMessage,
            format!("unknown message type {kind:?}; expected one of {KNOWN:?}"),
        ));
    }
    serde_json::from_value(value)
        .map_err(|e| (ErrorCode::BadRequest, format!("bad {kind} message: {e}")))
}

#[cfg(test)]
mod props {
    //! Property tests of reading client messages: nothing a client sends makes the server
    //! panic, and a tail is accepted exactly when it is within bounds.
    use super::*;
    use app::protocol::MAX_TAIL;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_text_gets_a_message_or_a_short_error(text in "\\PC{0,300}") {
            match read_message(&text).1 {
                Ok(_) => prop_assert!(serde_json::from_str::<serde_json::Value>(&text).is_ok()),
                Err((code, message)) => {
                    prop_assert!(matches!(code, ErrorCode::BadMessage | ErrorCode::BadRequest));
                    // Said back to the client: never an echo of whatever it sent.
                    prop_assert!(!message.is_empty() && message.len() <= 300, "{message}");
                }
            }
        }

        #[test]
        fn any_json_gets_a_message_or_an_error(
            kind in prop_oneof![Just("subscribe".to_owned()), Just("unsubscribe".to_owned()), "[a-z]{0,12}"],
            project in proptest::option::of("\\PC{0,20}"),
            tail in proptest::option::of(any::<i64>()),
            resume in proptest::option::of(proptest::collection::vec("\\PC{0,40}", 0..4)),
        ) {
            let mut msg = serde_json::json!({"type": kind, "service": "web"});
            if let Some(p) = project { msg["project"] = p.into(); }
            if let Some(t) = tail { msg["tail"] = t.into(); }
            if let Some(r) = resume { msg["resume"] = r.into(); }
            let _ = read_message(&msg.to_string());
        }

        #[test]
        fn a_refused_request_is_answered_with_its_id(id in any::<u32>(), tail in 10_001i64..) {
            let msg = serde_json::json!({"type": "subscribe", "project": "p", "service": "s", "tail": tail, "id": id});
            let (read_id, read) = read_message(&msg.to_string());
            prop_assert_eq!(read_id, Some(id));
            prop_assert!(read.is_err());
        }

        #[test]
        fn a_tail_is_taken_only_within_bounds(tail in any::<i64>()) {
            let msg = serde_json::json!({"type": "subscribe", "project": "p", "service": "s", "tail": tail});
            let read = read_message(&msg.to_string()).1;
            if (0..=i64::from(MAX_TAIL)).contains(&tail) {
                prop_assert!(read.is_ok(), "{tail}: {:?}", read.err());
            } else {
                prop_assert!(matches!(read, Err((ErrorCode::BadRequest, _))), "{tail}");
            }
        }
    }
}
