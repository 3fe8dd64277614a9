//! Just enough SIP over UDP for a caller: build requests and responses as
//! text and read the start line and headers of what arrives.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// A received SIP message, split into start line, headers and body.
#[derive(Debug, Clone)]
pub struct Message {
    /// `Some(status)` for a response, `None` for a request.
    pub status: Option<u16>,
    /// The method of a request, or of the CSeq of a response.
    pub method: String,
    /// Headers in order as (lower-case full name, value).
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Message {
    pub fn parse(bytes: &[u8]) -> Option<Message> {
        let text = std::str::from_utf8(bytes).ok()?;
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text, ""));
        let mut lines = head.split("\r\n");
        let start = lines.next()?;

        let mut headers = Vec::new();
        for line in lines {
            let (name, value) = line.split_once(':')?;
            headers.push((full_name(name.trim()), value.trim().to_owned()));
        }

        let cseq_method = headers
            .iter()
            .find(|(name, _)| name == "cseq")
            .and_then(|(_, value)| value.split_whitespace().nth(1))
            .unwrap_or_default()
            .to_owned();
        let (status, method) = if let Some(rest) = start.strip_prefix("SIP/2.0 ") {
            (rest.get(..3)?.parse().ok(), cseq_method)
        } else {
            (None, start.split_whitespace().next()?.to_owned())
        };

        Some(Message {
            status,
            method,
            headers,
            body: body.to_owned(),
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Every value of a header, in order (Via may repeat).
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Returns the URI inside the angle brackets of the Contact header.
    pub fn contact_uri(&self) -> Option<String> {
        let contact = self.header("contact")?;
        let start = contact.find('<')? + 1;
        let end = contact[start..].find('>')? + start;
        Some(contact[start..end].to_owned())
    }

    /// Builds a response to this request that copies Via, From, To,
    /// Call-ID and CSeq.
    pub fn response(&self, status: &str, extra: &str) -> String {
        let mut out = format!("SIP/2.0 {status}\r\n");
        for via in self.all("via") {
            out.push_str(&format!("Via: {via}\r\n"));
        }
        for name in ["From", "To", "Call-ID", "CSeq"] {
            if let Some(value) = self.header(&name.to_ascii_lowercase()) {
                out.push_str(&format!("{name}: {value}\r\n"));
            }
        }
        out.push_str(extra);
        out.push_str("Content-Length: 0\r\n\r\n");
        out
    }
}

/// Maps compact header forms (RFC 3261 §7.3.3) to full lower-case names.
fn full_name(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    match lower.as_str() {
        "i" => "call-id",
        "v" => "via",
        "f" => "from",
        "t" => "to",
        "m" => "contact",
        "l" => "content-length",
        "c" => "content-type",
        "e" => "content-encoding",
        "r" => "refer-to",
        "o" => "event",
        _ => return lower,
    }
    .to_owned()
}

/// Reads the remote RTP address from an SDP body: the session or media
/// `c=` line and the port of the first `m=audio`.
pub fn sdp_remote(body: &str) -> Option<SocketAddr> {
    let mut ip = None;
    let mut port = None;
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("c=IN IP4 ") {
            ip = Some(rest.trim().to_owned());
        } else if let Some(rest) = line.strip_prefix("m=audio ") {
            port = rest.split_whitespace().next().and_then(|p| p.parse::<u16>().ok());
        }
    }
    format!("{}:{}", ip?, port?).parse().ok()
}

/// One UDP socket shared by every call; received messages are routed to
/// the call task by Call-ID.
#[derive(Clone)]
pub struct SipSocket {
    pub socket: Arc<UdpSocket>,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    routes: Arc<Mutex<HashMap<String, mpsc::UnboundedSender<Message>>>>,
}

impl SipSocket {
    pub async fn bind(remote: SocketAddr) -> std::io::Result<SipSocket> {
        let socket = UdpSocket::bind("127.0.0.1:0").await?;
        set_buffer_sizes(&socket, 8 << 20);
        let local = socket.local_addr()?;
        let sip = SipSocket {
            socket: Arc::new(socket),
            local,
            remote,
            routes: Arc::new(Mutex::new(HashMap::new())),
        };
        tokio::spawn(sip.clone().route());
        Ok(sip)
    }

    pub fn register(&self, call_id: &str) -> mpsc::UnboundedReceiver<Message> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.routes.lock().unwrap().insert(call_id.to_owned(), tx);
        rx
    }

    pub fn unregister(&self, call_id: &str) {
        self.routes.lock().unwrap().remove(call_id);
    }

    pub async fn send(&self, text: &str) {
        let _ = self.socket.send_to(text.as_bytes(), self.remote).await;
    }

    async fn route(self) {
        let mut buffer = vec![0u8; 65_535];
        loop {
            let Ok((length, _)) = self.socket.recv_from(&mut buffer).await else {
                continue;
            };
            let Some(message) = Message::parse(&buffer[..length]) else {
                continue;
            };
            let Some(call_id) = message.header("call-id").map(str::to_owned) else {
                continue;
            };
            let route = self.routes.lock().unwrap().get(&call_id).cloned();
            match route {
                Some(tx) => {
                    let _ = tx.send(message);
                }
                // A late retransmission for a finished call: answer a
                // request so that the service stops retransmitting.
                None if message.status.is_none() && message.method != "ACK" => {
                    self.send(&message.response("481 Call/Transaction Does Not Exist", ""))
                        .await;
                }
                None => {}
            }
        }
    }
}

/// Raises SO_SNDBUF and SO_RCVBUF; the kernel caps them at its maximums.
pub fn set_buffer_sizes(socket: &UdpSocket, bytes: libc::c_int) {
    use std::os::fd::AsRawFd;
    for option in [libc::SO_SNDBUF, libc::SO_RCVBUF] {
        // SAFETY: the fd is open for the lifetime of `socket`, and the
        // option value is a c_int as setsockopt expects.
        unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                option,
                std::ptr::from_ref(&bytes).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
}
