//! A loopback HTTP server that plays an SMS provider in tests: it records
//! every request (method, path, headers, body, arrival time) and responds
//! with scripted replies, so a test can assert exactly what a gateway sent
//! and how it handles each documented response.

#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;

/// One request as the server received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// HTTP method, such as `POST`.
    pub method: String,
    /// Path without the query, such as `/v1/messages`.
    pub path: String,
    /// Headers by lowercase name; a repeated header keeps its last value.
    pub headers: HashMap<String, String>,
    /// Raw body.
    pub body: Vec<u8>,
    /// When the request arrived, to check the backoff between retries.
    pub received_at: Instant,
}

impl RecordedRequest {
    /// Returns a header value by name, ignoring case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// Parses the body as JSON, panicking with the body when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!(
                "request body is not JSON ({error}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// Parses an `application/x-www-form-urlencoded` body into pairs.
    pub fn form(&self) -> Vec<(String, String)> {
        let body = String::from_utf8_lossy(&self.body);
        body.split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                (percent_decode(name), percent_decode(value))
            })
            .collect()
    }

    /// Returns the value of one form field.
    pub fn form_value(&self, name: &str) -> Option<String> {
        self.form()
            .into_iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value)
    }
}

/// Decodes `+` and `%XX` escapes of a form value.
fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'+' => {
                out.push(b' ');
                index += 1;
            }
            b'%' => {
                let decoded = bytes
                    .get(index + 1..index + 3)
                    .and_then(|hex| std::str::from_utf8(hex).ok())
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok());
                match decoded {
                    Some(byte) => {
                        out.push(byte);
                        index += 3;
                    }
                    None => {
                        out.push(b'%');
                        index += 1;
                    }
                }
            }
            byte => {
                out.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One scripted response.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status code.
    pub status: u16,
    /// Response body.
    pub body: String,
    /// Content-Type of the body.
    pub content_type: &'static str,
    /// Time the server waits before responding, to provoke a client timeout.
    pub delay: Duration,
}

impl Reply {
    /// Creates a JSON reply.
    pub fn json(status: u16, body: serde_json::Value) -> Reply {
        Reply {
            status,
            body: body.to_string(),
            content_type: "application/json",
            delay: Duration::ZERO,
        }
    }

    /// Creates a plain-text reply.
    pub fn text(status: u16, body: &str) -> Reply {
        Reply {
            status,
            body: body.to_owned(),
            content_type: "text/plain",
            delay: Duration::ZERO,
        }
    }

    /// Returns the same reply, sent after `delay`.
    pub fn delayed(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

/// What the handler shares with the test.
#[derive(Debug)]
struct ServerState {
    /// Every request received, in order.
    requests: Vec<RecordedRequest>,
    /// Replies for the next requests, in order.
    scripted: VecDeque<Reply>,
    /// Reply once the script is used up.
    default_reply: Reply,
}

/// A running fake provider on 127.0.0.1 and a free port. Dropping it stops
/// the server.
pub struct SmsServer {
    /// Address the server listens on.
    addr: SocketAddr,
    /// Requests and replies, shared with the handler.
    state: Arc<Mutex<ServerState>>,
    /// The server task, aborted on drop.
    task: tokio::task::JoinHandle<()>,
}

impl SmsServer {
    /// Starts a server that answers `default_reply` unless a scripted reply
    /// is queued.
    pub async fn start(default_reply: Reply) -> SmsServer {
        let state = Arc::new(Mutex::new(ServerState {
            requests: Vec::new(),
            scripted: VecDeque::new(),
            default_reply,
        }));
        let router = Router::new()
            .fallback(record_and_reply)
            .with_state(Arc::clone(&state));

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });

        SmsServer { addr, state, task }
    }

    /// Returns `http://127.0.0.1:<port>` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Queues `reply` for the next request that has no scripted reply yet.
    pub fn push_reply(&self, reply: Reply) {
        self.state
            .lock()
            .expect("server state")
            .scripted
            .push_back(reply);
    }

    /// Returns every request received so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.lock().expect("server state").requests.clone()
    }

    /// Returns the only request received, panicking when there were more or
    /// none.
    pub fn single_request(&self) -> RecordedRequest {
        let requests = self.requests();
        assert_eq!(requests.len(), 1, "expected one request, got {requests:#?}");
        requests.into_iter().next().expect("one request")
    }
}

impl Drop for SmsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Records the request, then answers with the next scripted reply.
async fn record_and_reply(
    State(state): State<Arc<Mutex<ServerState>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let reply = {
        let mut state = state.lock().expect("server state");
        state.requests.push(RecordedRequest {
            method: method.to_string(),
            path: uri.path().to_owned(),
            headers: headers
                .iter()
                .map(|(name, value)| {
                    (
                        name.as_str().to_owned(),
                        String::from_utf8_lossy(value.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: body.to_vec(),
            received_at: Instant::now(),
        });
        let default_reply = state.default_reply.clone();
        state.scripted.pop_front().unwrap_or(default_reply)
    };

    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }

    let status = StatusCode::from_u16(reply.status).expect("valid status");
    (
        status,
        [(axum::http::header::CONTENT_TYPE, reply.content_type)],
        reply.body,
    )
        .into_response()
}
