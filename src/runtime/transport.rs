//! The SIP sockets: UDP sockets, TCP and TLS listeners, and one task per
//! TCP or TLS connection. They all feed one channel of [`Inbound`] items to
//! the SIP task, which owns the endpoint, and [`Transports::send`] carries
//! each [`Transmit`] out on the socket or connection it names.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;

use crate::sip::{
    ConnectionId, FramingError, Received, StreamFrame, StreamFramer, Transmit, Transport,
};

/// Listen addresses for SIP, per transport, and the TLS certificate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SipListeners {
    /// UDP sockets, IPv4 or IPv6.
    pub udp: Vec<SocketAddr>,
    /// TCP listeners.
    pub tcp: Vec<SocketAddr>,
    /// TLS listeners (SIPS); they need both PEM files below.
    pub tls: Vec<SocketAddr>,
    /// PEM file with the server certificate chain, leaf first.
    pub tls_certificate_file: Option<PathBuf>,
    /// PEM file with the private key of the certificate (PKCS#8, PKCS#1 or SEC1).
    pub tls_private_key_file: Option<PathBuf>,
}

/// Failure to start the SIP listeners.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error(
        "cannot listen for SIP over {transport:?} on {address}: {source}; pick a free address"
    )]
    Bind {
        transport: Transport,
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("TLS listeners are configured but {which} is not set; set both the certificate and the private key file")]
    MissingTlsFile { which: &'static str },
    #[error("cannot read {path}: {reason}; check that it is a PEM file readable by the service")]
    ReadPem { path: PathBuf, reason: String },
    #[error("{path} contains no PEM certificate")]
    NoCertificate { path: PathBuf },
    #[error("TLS configuration rejected the certificate or key: {0}")]
    Tls(#[from] rustls::Error),
}

/// Largest number of items waiting in the channel to the SIP task. When the
/// SIP task falls behind, UDP readers wait and the kernel drops datagrams,
/// which is the right place to shed load.
const INBOUND_QUEUE: usize = 1024;

/// Largest datagram read from a UDP socket: the largest UDP payload (RFC 768).
const UDP_RECEIVE_BYTES: usize = 65_535;

/// Size of one read from a TCP or TLS stream; messages spanning reads are joined by the framer.
const STREAM_READ_BYTES: usize = 16 * 1024;

/// Time a TLS handshake may take, so that a peer that opens connections and
/// never speaks cannot hold sockets for long.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Time a TCP or TLS connection may stay without traffic in either
/// direction before we close it. A PBX keeps its connection busy with
/// calls or CRLF keep-alives (RFC 5626 §4.4.1), and reconnects when needed.
const CONNECTION_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// Time allowed to connect to a peer when we must open a TCP connection to
/// send a request or response.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Item from a socket or connection task to the SIP task.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// A UDP datagram, or a message framed from a stream.
    Message { received: Received, bytes: Vec<u8> },
    /// A stream lost its framing; the SIP task answers 400 if possible and closes it.
    Unframed {
        received: Received,
        header: Option<Vec<u8>>,
        error: FramingError,
    },
    /// A connection is open and accepts writes through `writer`.
    Opened {
        connection: ConnectionId,
        transport: Transport,
        remote: SocketAddr,
        writer: mpsc::UnboundedSender<Outbound>,
    },
    /// A connection has closed.
    Closed { connection: ConnectionId },
}

/// Command from the SIP task to a connection task.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// Write these bytes.
    Bytes(Vec<u8>),
    /// Close the connection after everything queued before it is written.
    Close,
}

/// An open TCP or TLS connection, as tracked by the SIP task.
#[derive(Debug)]
struct Connection {
    /// TCP or TLS.
    transport: Transport,
    /// Remote address, to reuse the connection for a Transmit without a connection id.
    remote: SocketAddr,
    /// Queue of the connection task's writer.
    writer: mpsc::UnboundedSender<Outbound>,
}

/// Sockets and listeners bound by [`SipListeners::bind`], not yet serving.
pub struct BoundListeners {
    /// UDP sockets with their local addresses.
    udp: Vec<(SocketAddr, Arc<UdpSocket>)>,
    /// TCP listeners.
    tcp: Vec<TcpListener>,
    /// TLS listeners and the acceptor holding the certificate.
    tls: Vec<(TcpListener, TlsAcceptor)>,
}

impl BoundListeners {
    /// Returns the local address of every socket and listener with its transport.
    pub fn local_addrs(&self) -> Vec<(Transport, SocketAddr)> {
        let udp = self
            .udp
            .iter()
            .map(|(address, _)| (Transport::Udp, *address));
        let tcp = self
            .tcp
            .iter()
            .filter_map(|listener| listener.local_addr().ok())
            .map(|address| (Transport::Tcp, address));
        let tls = self
            .tls
            .iter()
            .filter_map(|(listener, _)| listener.local_addr().ok())
            .map(|address| (Transport::Tls, address));
        udp.chain(tcp).chain(tls).collect()
    }
}

impl SipListeners {
    /// Binds every configured socket and loads the TLS certificate.
    pub async fn bind(&self) -> Result<BoundListeners, TransportError> {
        let mut bound = BoundListeners {
            udp: Vec::new(),
            tcp: Vec::new(),
            tls: Vec::new(),
        };

        for address in &self.udp {
            let socket = UdpSocket::bind(address)
                .await
                .map_err(|source| bind_error(Transport::Udp, *address, source))?;
            let local = socket
                .local_addr()
                .map_err(|source| bind_error(Transport::Udp, *address, source))?;
            bound.udp.push((local, Arc::new(socket)));
        }

        for address in &self.tcp {
            let listener = TcpListener::bind(address)
                .await
                .map_err(|source| bind_error(Transport::Tcp, *address, source))?;
            bound.tcp.push(listener);
        }

        if !self.tls.is_empty() {
            let acceptor = self.tls_acceptor()?;
            for address in &self.tls {
                let listener = TcpListener::bind(address)
                    .await
                    .map_err(|source| bind_error(Transport::Tls, *address, source))?;
                bound.tls.push((listener, acceptor.clone()));
            }
        }
        Ok(bound)
    }

    /// Builds the TLS acceptor from the PEM files, with rustls on the ring provider.
    fn tls_acceptor(&self) -> Result<TlsAcceptor, TransportError> {
        let certificate_file =
            self.tls_certificate_file
                .as_deref()
                .ok_or(TransportError::MissingTlsFile {
                    which: "the certificate file",
                })?;
        let key_file =
            self.tls_private_key_file
                .as_deref()
                .ok_or(TransportError::MissingTlsFile {
                    which: "the private key file",
                })?;

        let certificates = load_certificates(certificate_file)?;
        let key =
            PrivateKeyDer::from_pem_file(key_file).map_err(|error| TransportError::ReadPem {
                path: key_file.to_path_buf(),
                reason: error.to_string(),
            })?;

        // ring keeps aws-lc-rs out of the build. rustls deprecates ring's
        // default provider because ring has no post-quantum key exchange.
        // NOTE: TLS sessions therefore use classical key exchange only.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(certificates, key)?;
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

/// Reads every certificate of a PEM file, failing when there is none.
pub(crate) fn load_certificates(
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TransportError> {
    let read_error = |error: rustls::pki_types::pem::Error| TransportError::ReadPem {
        path: path.to_path_buf(),
        reason: error.to_string(),
    };
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(read_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(read_error)?;
    if certificates.is_empty() {
        return Err(TransportError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(certificates)
}

fn bind_error(transport: Transport, address: SocketAddr, source: std::io::Error) -> TransportError {
    TransportError::Bind {
        transport,
        address,
        source,
    }
}

/// The running transports, owned by the SIP task.
pub(crate) struct Transports {
    /// UDP sockets by local address, to send from the listener a Transmit names.
    udp: HashMap<SocketAddr, Arc<UdpSocket>>,
    /// Open TCP and TLS connections.
    connections: HashMap<ConnectionId, Connection>,
    /// Cloned into connections we open ourselves.
    inbound: mpsc::Sender<Inbound>,
    /// Source of connection ids, shared with the accept loops.
    connection_ids: Arc<std::sync::atomic::AtomicU64>,
    /// Largest message a stream may carry.
    max_message_bytes: usize,
}

impl Transports {
    /// Starts a reader task per UDP socket and an accept loop per TCP and TLS
    /// listener. Returns the transports and the channel they all feed.
    pub fn start(
        bound: BoundListeners,
        max_message_bytes: usize,
    ) -> (Transports, mpsc::Receiver<Inbound>) {
        let (inbound_tx, inbound_rx) = mpsc::channel(INBOUND_QUEUE);
        let connection_ids = Arc::new(std::sync::atomic::AtomicU64::new(1));

        let mut udp = HashMap::new();
        for (local, socket) in bound.udp {
            tokio::spawn(read_udp(local, Arc::clone(&socket), inbound_tx.clone()));
            udp.insert(local, socket);
        }
        for listener in bound.tcp {
            tokio::spawn(accept_tcp(
                listener,
                None,
                inbound_tx.clone(),
                Arc::clone(&connection_ids),
                max_message_bytes,
            ));
        }
        for (listener, acceptor) in bound.tls {
            tokio::spawn(accept_tcp(
                listener,
                Some(acceptor),
                inbound_tx.clone(),
                Arc::clone(&connection_ids),
                max_message_bytes,
            ));
        }

        let transports = Transports {
            udp,
            connections: HashMap::new(),
            inbound: inbound_tx,
            connection_ids,
            max_message_bytes,
        };
        (transports, inbound_rx)
    }

    /// Records a connection opened or closed; call it for `Opened` and `Closed` items.
    pub fn track(&mut self, inbound: &Inbound) {
        match inbound {
            Inbound::Opened {
                connection,
                transport,
                remote,
                writer,
            } => {
                self.connections.insert(
                    *connection,
                    Connection {
                        transport: *transport,
                        remote: *remote,
                        writer: writer.clone(),
                    },
                );
            }
            Inbound::Closed { connection } => {
                self.connections.remove(connection);
            }
            Inbound::Message { .. } | Inbound::Unframed { .. } => {}
        }
    }

    /// Closes a connection after what is queued on it has been written.
    pub fn close(&mut self, connection: ConnectionId) {
        if let Some(open) = self.connections.remove(&connection) {
            let _ = open.writer.send(Outbound::Close);
        }
    }

    /// Sends one message the endpoint queued.
    ///
    /// UDP goes out on the socket bound to `transmit.local` (any UDP socket
    /// of the same address family when that one is gone). A stream message
    /// goes on its connection while open, else on another open connection to
    /// the same address and transport, else on a new TCP connection
    /// (RFC 3261 §18.2.2).
    pub async fn send(&mut self, transmit: Transmit) {
        let destination = transmit.destination;
        match transmit.transport {
            Transport::Udp => {
                let socket = self.udp.get(&transmit.local).or_else(|| {
                    self.udp
                        .iter()
                        .find(|(local, _)| local.is_ipv4() == destination.is_ipv4())
                        .map(|(_, socket)| socket)
                });
                let Some(socket) = socket else {
                    tracing::warn!(%destination, "no UDP socket of the destination's address family; message dropped");
                    return;
                };
                if let Err(error) = socket.send_to(&transmit.payload, destination).await {
                    tracing::warn!(%destination, %error, "SIP send over UDP failed");
                }
            }
            Transport::Tcp | Transport::Tls => self.send_on_stream(transmit),
        }
    }

    fn send_on_stream(&mut self, transmit: Transmit) {
        let destination = transmit.destination;
        let mut payload = transmit.payload;
        let open = transmit
            .connection
            .filter(|id| self.connections.contains_key(id))
            .or_else(|| {
                self.connections
                    .iter()
                    .find(|(_, open)| {
                        open.remote == destination && open.transport == transmit.transport
                    })
                    .map(|(id, _)| *id)
            });
        if let Some(id) = open {
            if let Some(connection) = self.connections.get(&id) {
                match connection.writer.send(Outbound::Bytes(payload)) {
                    Ok(()) => return,
                    Err(mpsc::error::SendError(unsent)) => {
                        // The connection task ended before its Closed item arrived.
                        self.connections.remove(&id);
                        let Outbound::Bytes(unsent) = unsent else {
                            return;
                        };
                        payload = unsent;
                    }
                }
            }
        }

        if transmit.transport == Transport::Tls {
            // NOTE: opening a TLS connection ourselves needs a client
            // configuration with trusted roots, which this service does not
            // have yet; such messages are dropped.
            tracing::warn!(%destination, "no open TLS connection to the destination; message dropped");
            return;
        }

        let id = ConnectionId(
            self.connection_ids
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        );
        let inbound = self.inbound.clone();
        let max_message_bytes = self.max_message_bytes;
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(
                CONNECT_TIMEOUT,
                TcpStream::connect(destination),
            )
            .await
            {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => {
                    tracing::warn!(%destination, %error, "SIP connect over TCP failed; message dropped");
                    return;
                }
                Err(_) => {
                    tracing::warn!(%destination, timeout_s = CONNECT_TIMEOUT.as_secs(), "SIP connect over TCP timed out; message dropped");
                    return;
                }
            };
            let Ok(local) = stream.local_addr() else {
                return;
            };
            let connection = StreamConnection {
                id,
                transport: Transport::Tcp,
                local,
                remote: destination,
                inbound,
                max_message_bytes,
            };
            connection.run(stream, vec![payload]).await;
        });
    }
}

/// Reads datagrams from one UDP socket until the SIP task stops.
async fn read_udp(local: SocketAddr, socket: Arc<UdpSocket>, inbound: mpsc::Sender<Inbound>) {
    let mut buffer = vec![0u8; UDP_RECEIVE_BYTES];
    loop {
        match socket.recv_from(&mut buffer).await {
            Ok((length, source)) => {
                let received = Received {
                    transport: Transport::Udp,
                    local,
                    source,
                    connection: None,
                };
                let bytes = buffer.get(..length).unwrap_or_default().to_vec();
                if inbound
                    .send(Inbound::Message { received, bytes })
                    .await
                    .is_err()
                {
                    return;
                }
            }
            // On Linux an ICMP port unreachable from an earlier send
            // surfaces here; it concerns that peer only.
            Err(error) => tracing::debug!(%local, %error, "SIP receive over UDP failed"),
        }
    }
}

/// Accepts TCP connections (with a TLS handshake when `acceptor` is set)
/// and starts a task for each, until the SIP task stops.
async fn accept_tcp(
    listener: TcpListener,
    acceptor: Option<TlsAcceptor>,
    inbound: mpsc::Sender<Inbound>,
    connection_ids: Arc<std::sync::atomic::AtomicU64>,
    max_message_bytes: usize,
) {
    let transport = if acceptor.is_some() {
        Transport::Tls
    } else {
        Transport::Tcp
    };
    loop {
        if inbound.is_closed() {
            return;
        }
        let (stream, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Running out of file descriptors lands here; wait briefly
                // instead of spinning.
                tracing::warn!(%error, ?transport, "accepting a SIP connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(local) = stream.local_addr() else {
            continue;
        };
        let connection = StreamConnection {
            id: ConnectionId(connection_ids.fetch_add(1, std::sync::atomic::Ordering::Relaxed)),
            transport,
            local,
            remote,
            inbound: inbound.clone(),
            max_message_bytes,
        };

        match &acceptor {
            None => {
                tokio::spawn(connection.run(stream, Vec::new()));
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let handshake =
                        tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await;
                    match handshake {
                        Ok(Ok(tls)) => connection.run(tls, Vec::new()).await,
                        Ok(Err(error)) => {
                            tracing::info!(%remote, %error, "TLS handshake failed")
                        }
                        Err(_) => tracing::info!(%remote, "TLS handshake timed out"),
                    }
                });
            }
        }
    }
}

/// One TCP or TLS connection: frames what it reads, writes what the SIP task queues.
struct StreamConnection {
    /// Id handed to the endpoint with every message.
    id: ConnectionId,
    /// TCP or TLS.
    transport: Transport,
    /// Our end of the connection, named in Via and Contact.
    local: SocketAddr,
    /// The peer's end.
    remote: SocketAddr,
    /// Channel to the SIP task.
    inbound: mpsc::Sender<Inbound>,
    /// Largest message accepted.
    max_message_bytes: usize,
}

impl StreamConnection {
    /// Serves the connection until either side closes it or it idles out.
    /// `initial` is written first (a message that made us connect).
    async fn run<S>(self, stream: S, initial: Vec<Vec<u8>>)
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let (writer_tx, mut writer_rx) = mpsc::unbounded_channel();
        let opened = Inbound::Opened {
            connection: self.id,
            transport: self.transport,
            remote: self.remote,
            writer: writer_tx,
        };
        if self.inbound.send(opened).await.is_err() {
            return;
        }
        tracing::debug!(remote = %self.remote, transport = ?self.transport, "SIP connection opened");

        let (mut reader, mut writer) = tokio::io::split(stream);
        for bytes in initial {
            if let Err(error) = writer.write_all(&bytes).await {
                tracing::warn!(remote = %self.remote, %error, "SIP send on a new connection failed");
            }
        }

        let received = Received {
            transport: self.transport,
            local: self.local,
            source: self.remote,
            connection: Some(self.id),
        };
        let mut framer = StreamFramer::new(self.max_message_bytes);
        let mut buffer = vec![0u8; STREAM_READ_BYTES];
        let mut reading = true;

        loop {
            tokio::select! {
                read = reader.read(&mut buffer), if reading => {
                    let length = match read {
                        Ok(0) => break,
                        Ok(length) => length,
                        Err(error) => {
                            tracing::debug!(remote = %self.remote, %error, "SIP connection read failed");
                            break;
                        }
                    };
                    framer.push(buffer.get(..length).unwrap_or_default());
                    while let Some(frame) = framer.next_frame() {
                        let item = match frame {
                            StreamFrame::Message(bytes) => Inbound::Message { received, bytes },
                            StreamFrame::KeepAlive => {
                                // RFC 5626 §4.4.1: a CRLF answers a double-CRLF ping.
                                let _ = writer.write_all(b"\r\n").await;
                                continue;
                            }
                            StreamFrame::Invalid { header, error } => {
                                // Keep the writer open for the 400; the SIP task sends Close.
                                reading = false;
                                Inbound::Unframed { received, header, error }
                            }
                        };
                        if self.inbound.send(item).await.is_err() {
                            return;
                        }
                    }
                }
                outbound = writer_rx.recv() => match outbound {
                    Some(Outbound::Bytes(bytes)) => {
                        if let Err(error) = writer.write_all(&bytes).await {
                            tracing::debug!(remote = %self.remote, %error, "SIP connection write failed");
                            break;
                        }
                    }
                    Some(Outbound::Close) | None => {
                        let _ = writer.shutdown().await;
                        break;
                    }
                },
                () = tokio::time::sleep(CONNECTION_IDLE_TIMEOUT) => {
                    tracing::debug!(remote = %self.remote, "closing an idle SIP connection");
                    break;
                }
            }
        }

        let _ = self
            .inbound
            .send(Inbound::Closed {
                connection: self.id,
            })
            .await;
        tracing::debug!(remote = %self.remote, transport = ?self.transport, "SIP connection closed");
    }
}

#[cfg(test)]
#[path = "transport_sipp_tests.rs"]
mod sipp_tests;

#[cfg(test)]
mod tests {
    use super::*;

    use tokio_rustls::TlsConnector;

    /// Upper bound on any single wait, so a broken transport fails the test instead of hanging it.
    const WAIT: Duration = Duration::from_secs(5);

    const OPTIONS: &str = "OPTIONS sip:ivr@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5070;branch=z9hG4bK1\r\nContent-Length: 0\r\n\r\n";

    async fn next(inbound: &mut mpsc::Receiver<Inbound>) -> Inbound {
        tokio::time::timeout(WAIT, inbound.recv())
            .await
            .expect("an inbound item within the wait")
            .expect("the inbound channel is open")
    }

    async fn start(
        listeners: SipListeners,
    ) -> (
        Transports,
        mpsc::Receiver<Inbound>,
        Vec<(Transport, SocketAddr)>,
    ) {
        let bound = listeners.bind().await.expect("listeners bind on loopback");
        let addresses = bound.local_addrs();
        let (transports, inbound) = Transports::start(bound, 65_535);
        (transports, inbound, addresses)
    }

    fn reply(
        connection: ConnectionId,
        transport: Transport,
        local: SocketAddr,
        destination: SocketAddr,
        payload: &[u8],
    ) -> Transmit {
        Transmit {
            transport,
            local,
            destination,
            connection: Some(connection),
            payload: payload.to_vec(),
        }
    }

    #[tokio::test]
    async fn tcp_frames_messages_and_replies_on_connection() {
        let (mut transports, mut inbound, addresses) = start(SipListeners {
            tcp: vec!["127.0.0.1:0".parse().unwrap()],
            ..SipListeners::default()
        })
        .await;
        let (_, server) = addresses[0];
        let mut client = TcpStream::connect(server).await.unwrap();
        client
            .write_all(format!("{OPTIONS}{OPTIONS}").as_bytes())
            .await
            .unwrap();

        let opened = next(&mut inbound).await;
        let Inbound::Opened {
            connection,
            transport,
            remote,
            ..
        } = &opened
        else {
            panic!("expected Opened, got {opened:?}");
        };
        let (connection, remote) = (*connection, *remote);
        assert_eq!(*transport, Transport::Tcp);
        assert_eq!(remote, client.local_addr().unwrap());
        transports.track(&opened);

        for _ in 0..2 {
            let Inbound::Message { received, bytes } = next(&mut inbound).await else {
                panic!("expected a message");
            };
            assert_eq!(bytes, OPTIONS.as_bytes());
            assert_eq!(received.transport, Transport::Tcp);
            assert_eq!(received.connection, Some(connection));
            assert_eq!(received.local, server);
        }

        let response = b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n";
        transports
            .send(reply(connection, Transport::Tcp, server, remote, response))
            .await;
        let mut buffer = vec![0u8; response.len()];
        tokio::time::timeout(WAIT, client.read_exact(&mut buffer))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(buffer, response);
    }

    #[tokio::test]
    async fn tcp_unframed_message_gets_reply_then_close() {
        let (mut transports, mut inbound, addresses) = start(SipListeners {
            tcp: vec!["127.0.0.1:0".parse().unwrap()],
            ..SipListeners::default()
        })
        .await;
        let (_, server) = addresses[0];
        let mut client = TcpStream::connect(server).await.unwrap();
        client
            .write_all(
                b"OPTIONS sip:ivr@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n\r\n",
            )
            .await
            .unwrap();

        let opened = next(&mut inbound).await;
        transports.track(&opened);
        let Inbound::Unframed {
            received,
            header,
            error,
        } = next(&mut inbound).await
        else {
            panic!("expected Unframed");
        };
        assert_eq!(error, FramingError::MissingContentLength);
        assert!(header.is_some());
        let connection = received.connection.unwrap();

        let response = b"SIP/2.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
        transports
            .send(reply(
                connection,
                Transport::Tcp,
                server,
                received.source,
                response,
            ))
            .await;
        transports.close(connection);

        let mut everything = Vec::new();
        tokio::time::timeout(WAIT, client.read_to_end(&mut everything))
            .await
            .expect("the server closes the connection")
            .unwrap();
        assert_eq!(everything, response);
        assert!(matches!(next(&mut inbound).await, Inbound::Closed { .. }));
    }

    #[tokio::test]
    async fn tcp_keepalive_gets_crlf() {
        let (_transports, mut inbound, addresses) = start(SipListeners {
            tcp: vec!["127.0.0.1:0".parse().unwrap()],
            ..SipListeners::default()
        })
        .await;
        let mut client = TcpStream::connect(addresses[0].1).await.unwrap();
        client.write_all(b"\r\n\r\n").await.unwrap();
        let _opened = next(&mut inbound).await;
        let mut pong = [0u8; 2];
        tokio::time::timeout(WAIT, client.read_exact(&mut pong))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&pong, b"\r\n");
    }

    #[tokio::test]
    async fn udp_over_ipv6_names_its_listener() {
        let (mut transports, mut inbound, addresses) = start(SipListeners {
            udp: vec!["[::1]:0".parse().unwrap(), "127.0.0.1:0".parse().unwrap()],
            ..SipListeners::default()
        })
        .await;
        let (_, server) = addresses[0];
        let client = UdpSocket::bind("[::1]:0").await.unwrap();
        client.send_to(OPTIONS.as_bytes(), server).await.unwrap();

        let Inbound::Message { received, bytes } = next(&mut inbound).await else {
            panic!("expected a message");
        };
        assert_eq!(bytes, OPTIONS.as_bytes());
        assert_eq!(received.local, server);
        assert_eq!(received.source, client.local_addr().unwrap());

        transports
            .send(Transmit {
                transport: Transport::Udp,
                local: server,
                destination: received.source,
                connection: None,
                payload: b"pong".to_vec(),
            })
            .await;
        let mut buffer = [0u8; 16];
        let (length, from) = tokio::time::timeout(WAIT, client.recv_from(&mut buffer))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(buffer.get(..length), Some(&b"pong"[..]));
        assert_eq!(from, server);
    }

    #[tokio::test]
    async fn tls_listener_serves_sips() {
        let directory = tempfile::tempdir().unwrap();
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let certificate_file = directory.path().join("sip.crt");
        let key_file = directory.path().join("sip.key");
        std::fs::write(&certificate_file, certified.cert.pem()).unwrap();
        std::fs::write(&key_file, certified.key_pair.serialize_pem()).unwrap();

        let (mut transports, mut inbound, addresses) = start(SipListeners {
            tls: vec!["127.0.0.1:0".parse().unwrap()],
            tls_certificate_file: Some(certificate_file),
            tls_private_key_file: Some(key_file),
            ..SipListeners::default()
        })
        .await;
        let (transport, server) = addresses[0];
        assert_eq!(transport, Transport::Tls);

        let mut roots = rustls::RootCertStore::empty();
        roots.add(certified.cert.der().clone()).unwrap();
        // ring keeps aws-lc-rs out of the build. rustls deprecates ring's
        // default provider because ring has no post-quantum key exchange.
        // NOTE: TLS sessions therefore use classical key exchange only.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let client_config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = TlsConnector::from(Arc::new(client_config));
        let tcp = TcpStream::connect(server).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut client = tokio::time::timeout(WAIT, connector.connect(name, tcp))
            .await
            .unwrap()
            .expect("the TLS handshake succeeds");
        client.write_all(OPTIONS.as_bytes()).await.unwrap();

        let opened = next(&mut inbound).await;
        transports.track(&opened);
        let Inbound::Message { received, bytes } = next(&mut inbound).await else {
            panic!("expected a message");
        };
        assert_eq!(bytes, OPTIONS.as_bytes());
        assert_eq!(received.transport, Transport::Tls);

        let response = b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n";
        transports
            .send(reply(
                received.connection.unwrap(),
                Transport::Tls,
                server,
                received.source,
                response,
            ))
            .await;
        let mut buffer = vec![0u8; response.len()];
        tokio::time::timeout(WAIT, client.read_exact(&mut buffer))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(buffer, response);
    }

    #[tokio::test]
    async fn tls_without_key_file_is_rejected() {
        let error = SipListeners {
            tls: vec!["127.0.0.1:0".parse().unwrap()],
            tls_certificate_file: Some(PathBuf::from("/nonexistent/sip.crt")),
            ..SipListeners::default()
        }
        .bind()
        .await
        .err()
        .expect("binding fails");
        assert!(
            matches!(error, TransportError::MissingTlsFile { .. }),
            "{error}"
        );

        let error = SipListeners {
            tls: vec!["127.0.0.1:0".parse().unwrap()],
            tls_certificate_file: Some(PathBuf::from("/nonexistent/sip.crt")),
            tls_private_key_file: Some(PathBuf::from("/nonexistent/sip.key")),
            ..SipListeners::default()
        }
        .bind()
        .await
        .err()
        .expect("binding fails");
        assert!(matches!(error, TransportError::ReadPem { .. }), "{error}");
    }
}
