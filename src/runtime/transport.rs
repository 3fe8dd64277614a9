//! The SIP sockets: UDP sockets, TCP and TLS listeners, and one task per
//! TCP or TLS connection. They all feed one channel of [`Inbound`] items to
//! the SIP task, which owns the endpoint, and [`Transports::send`] carries
//! each [`Transmit`] out on the socket or connection it names.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;

use crate::sip::edge::{canonical_ip, LogThrottle};
use crate::sip::{
    ConnectionId, EdgePolicy, FramingError, Received, StreamFrame, StreamFramer, Transmit,
    Transport,
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

/// Receive buffer requested for each SIP UDP socket, in bytes. At the
/// kernel default (net.core.rmem_default, 208 KiB on the benchmark machine
/// of docs/benchmarks.md) the buffer filled while the SIP task was busy
/// near saturation, and the kernel dropped datagrams (`Udp: RcvbufErrors`
/// in /proc/net/snmp). 4 MiB has room for about 20 times as many datagrams.
const UDP_RECEIVE_BUFFER_BYTES: usize = 4 * 1024 * 1024;

/// Size of one read from a TCP or TLS stream; messages spanning reads are joined by the framer.
const STREAM_READ_BYTES: usize = 16 * 1024;

/// Time a TLS handshake may take, so that a peer that opens connections and
/// never speaks cannot hold sockets for long.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Time a TCP or TLS connection may stay without traffic in either
/// direction before we close it. A PBX keeps its connection busy with
/// calls or CRLF keep-alives (RFC 5626 §4.4.1), and reconnects when needed.
const CONNECTION_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// Minimum interval between two warnings about connections closed at once
/// for a connection limit. A flood of connections then costs one log line
/// per interval, which carries the count of rejections not logged.
const REJECTED_CONNECTION_LOG_INTERVAL: Duration = Duration::from_secs(10);

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
            size_receive_buffer(&socket, local);
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

/// Enlarges the receive buffer of the SIP UDP socket bound to `local` to
/// [`UDP_RECEIVE_BUFFER_BYTES`] and logs the size granted. A failure is
/// logged and leaves the kernel default, because the socket works without
/// a larger buffer, only with more drops under load.
fn size_receive_buffer(socket: &UdpSocket, local: SocketAddr) {
    let requested_bytes = UDP_RECEIVE_BUFFER_BYTES;
    let buffer = match enlarge_receive_buffer(socket2::SockRef::from(socket), requested_bytes) {
        Ok(buffer) => buffer,
        Err(error) => {
            tracing::warn!(%local, %error, requested_bytes, "setting the SIP UDP receive buffer failed; the kernel default stays");
            return;
        }
    };

    // Linux reports twice the size set, counting its bookkeeping overhead
    // (socket(7)), so a granted size below the request means a cap.
    let granted_bytes = buffer.granted_bytes;
    tracing::info!(%local, requested_bytes, granted_bytes, forced = buffer.forced, "SIP UDP receive buffer set");
    if granted_bytes < requested_bytes {
        tracing::warn!(%local, requested_bytes, granted_bytes, "SIP UDP receive buffer is smaller than requested; raise net.core.rmem_max or give the service CAP_NET_ADMIN");
    }
}

/// Receive buffer size of a socket after [`enlarge_receive_buffer`].
#[derive(Clone, Copy, Debug)]
struct ReceiveBuffer {
    /// SO_RCVBUF as the kernel reports it after the change.
    granted_bytes: usize,
    /// Whether SO_RCVBUFFORCE was accepted, so that net.core.rmem_max did not cap the size.
    forced: bool,
}

/// Asks for a receive buffer of `bytes`: with SO_RCVBUFFORCE first, which
/// needs CAP_NET_ADMIN, then with SO_RCVBUF, which the kernel caps at
/// net.core.rmem_max. Returns the size granted.
fn enlarge_receive_buffer(
    socket: socket2::SockRef<'_>,
    bytes: usize,
) -> std::io::Result<ReceiveBuffer> {
    let forced = match force_receive_buffer(&socket, bytes) {
        Ok(()) => true,
        Err(error) => {
            tracing::debug!(%error, "SO_RCVBUFFORCE failed; setting SO_RCVBUF instead");
            socket.set_recv_buffer_size(bytes)?;
            false
        }
    };

    let granted_bytes = socket.recv_buffer_size()?;
    Ok(ReceiveBuffer {
        granted_bytes,
        forced,
    })
}

/// Sets SO_RCVBUFFORCE: SO_RCVBUF without the net.core.rmem_max cap, which
/// Linux permits only with CAP_NET_ADMIN (socket(7)). socket2 has no call
/// for it.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn force_receive_buffer(socket: &socket2::SockRef<'_>, bytes: usize) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;

    let value = libc::c_int::try_from(bytes)
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    let length = libc::socklen_t::try_from(std::mem::size_of::<libc::c_int>())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;

    // SAFETY: the descriptor stays open for the call because `socket`
    // borrows it. `optval` points to `value`, a c_int that outlives the
    // call, and `optlen` is its size, which is what SO_RCVBUFFORCE reads.
    let result = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            std::ptr::from_ref(&value).cast(),
            length,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// SO_RCVBUFFORCE exists only on Linux; elsewhere SO_RCVBUF is used.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn force_receive_buffer(_socket: &socket2::SockRef<'_>, _bytes: usize) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
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
    /// Connection limits of the accept loops, kept for their counters.
    #[cfg_attr(not(test), allow(dead_code))]
    limiter: ConnectionLimiter,
}

impl Transports {
    /// Starts a reader task per UDP socket and an accept loop per TCP and TLS
    /// listener. Returns the transports and the channel they all feed.
    ///
    /// `edge` gives the largest message, the trusted peers and the limits
    /// on the connections that peers open.
    pub fn start(
        bound: BoundListeners,
        edge: &EdgePolicy,
    ) -> (Transports, mpsc::Receiver<Inbound>) {
        let (inbound_tx, inbound_rx) = mpsc::channel(INBOUND_QUEUE);
        let connection_ids = Arc::new(std::sync::atomic::AtomicU64::new(1));
        let max_message_bytes = edge.max_message_bytes;
        let limiter = ConnectionLimiter::new(edge.clone());

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
                limiter.clone(),
            ));
        }
        for (listener, acceptor) in bound.tls {
            tokio::spawn(accept_tcp(
                listener,
                Some(acceptor),
                inbound_tx.clone(),
                Arc::clone(&connection_ids),
                limiter.clone(),
            ));
        }

        let transports = Transports {
            udp,
            connections: HashMap::new(),
            inbound: inbound_tx,
            connection_ids,
            max_message_bytes,
            limiter,
        };
        (transports, inbound_rx)
    }

    /// Returns how many accepted connections a limit closed at once so far.
    #[cfg(test)]
    fn rejected_connections(&self) -> u64 {
        lock_table(&self.limiter.table).rejected
    }

    /// Returns how many accepted connections hold a slot in the limits.
    #[cfg(test)]
    fn limited_connections(&self) -> usize {
        lock_table(&self.limiter.table).total
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
                first_message_deadline: None,
                permit: None,
            };
            connection.run(stream, vec![payload]).await;
        });
    }
}

/// Reads datagrams from one UDP socket until the SIP task stops.
///
/// One receive buffer serves every datagram; each message is copied out at
/// its own length, because the SIP task takes ownership of it.
// NOTE: after each datagram, tokio's `recv_from` calls recvfrom again and
// gets EAGAIN before the task sleeps, so a lone datagram costs two system
// calls. Avoiding that needs batching (recvmmsg), which saves little at
// SIP message rates.
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
/// and starts a task for each, until the SIP task stops. A connection over
/// a limit of `limiter` is closed at once.
async fn accept_tcp(
    listener: TcpListener,
    acceptor: Option<TlsAcceptor>,
    inbound: mpsc::Sender<Inbound>,
    connection_ids: Arc<std::sync::atomic::AtomicU64>,
    limiter: ConnectionLimiter,
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

        // Dropping the stream closes the connection before any byte is read.
        let Some(permit) = limiter.admit(remote, transport) else {
            continue;
        };

        let Ok(local) = stream.local_addr() else {
            continue;
        };
        let policy = limiter.policy();
        let connection = StreamConnection {
            id: ConnectionId(connection_ids.fetch_add(1, std::sync::atomic::Ordering::Relaxed)),
            transport,
            local,
            remote,
            inbound: inbound.clone(),
            max_message_bytes: policy.max_message_bytes,
            first_message_deadline: Some(
                tokio::time::Instant::now() + policy.first_message_timeout,
            ),
            permit: Some(permit),
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

/// Open connections that peers opened to us, shared by the accept loops
/// and the connection tasks.
#[derive(Debug, Default)]
struct ConnectionTable {
    /// Open accepted connections per source IP.
    per_source: HashMap<IpAddr, usize>,
    /// Open accepted connections in total.
    total: usize,
    /// Connections closed at once for a limit since the transports started.
    rejected: u64,
    /// Rate limit of the warning about rejected connections.
    rejected_log: LogThrottle,
}

/// The connection limits of the edge policy, applied when a connection is
/// accepted. Connections we open ourselves are neither limited nor counted.
#[derive(Clone, Debug)]
struct ConnectionLimiter {
    /// Trusted peers, limits and the first-message timeout.
    policy: Arc<EdgePolicy>,
    /// Open connections, shared with every permit.
    table: Arc<Mutex<ConnectionTable>>,
}

impl ConnectionLimiter {
    fn new(policy: EdgePolicy) -> Self {
        Self {
            policy: Arc::new(policy),
            table: Arc::new(Mutex::new(ConnectionTable::default())),
        }
    }

    fn policy(&self) -> &EdgePolicy {
        &self.policy
    }

    /// Takes a slot for a connection from `remote`. Returns None, and counts
    /// and logs the rejection, when `max_connections` are open or when an
    /// untrusted source already has `max_connections_per_source` open.
    fn admit(&self, remote: SocketAddr, transport: Transport) -> Option<ConnectionPermit> {
        let source = canonical_ip(remote.ip());
        let trusted = self.policy.is_trusted(source);
        let mut table = lock_table(&self.table);
        let open_from_source = table.per_source.get(&source).copied().unwrap_or_default();

        let exceeded_limit = if table.total >= self.policy.max_connections {
            Some("max_connections")
        } else if !trusted && open_from_source >= self.policy.max_connections_per_source {
            Some("max_connections_per_source")
        } else {
            None
        };
        if let Some(limit) = exceeded_limit {
            table.rejected += 1;
            let rejected_total = table.rejected;
            let open_total = table.total;
            if let Some(suppressed) = table
                .rejected_log
                .record(Instant::now(), REJECTED_CONNECTION_LOG_INTERVAL)
            {
                tracing::warn!(
                    %remote,
                    ?transport,
                    limit,
                    open_from_source,
                    open_total,
                    rejected_total,
                    suppressed,
                    "closed a SIP connection at once: connection limit reached"
                );
            }
            return None;
        }

        table.total += 1;
        *table.per_source.entry(source).or_default() += 1;
        Some(ConnectionPermit {
            source,
            table: Arc::clone(&self.table),
        })
    }
}

/// Locks the connection table. Its critical sections only update counters,
/// so the counts in a poisoned lock are still usable.
fn lock_table(table: &Mutex<ConnectionTable>) -> MutexGuard<'_, ConnectionTable> {
    table
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The slot of one accepted connection in the connection table, freed on drop.
#[derive(Debug)]
struct ConnectionPermit {
    /// Source IP the slot counts against.
    source: IpAddr,
    /// The table the slot belongs to.
    table: Arc<Mutex<ConnectionTable>>,
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut table = lock_table(&self.table);
        table.total = table.total.saturating_sub(1);
        if let Some(open) = table.per_source.get_mut(&self.source) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                table.per_source.remove(&self.source);
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
    /// For a connection a peer opened: when it is closed unless a complete
    /// message has arrived by then. None for connections we open.
    first_message_deadline: Option<tokio::time::Instant>,
    /// Slot of an accepted connection in the connection limits, freed when
    /// the connection ends. None for connections we open.
    permit: Option<ConnectionPermit>,
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
        let mut first_message_deadline = self.first_message_deadline;

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
                            StreamFrame::Message(bytes) => {
                                first_message_deadline = None;
                                Inbound::Message { received, bytes }
                            }
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
                () = tokio::time::sleep_until(
                    first_message_deadline.unwrap_or_else(tokio::time::Instant::now)
                ), if first_message_deadline.is_some() => {
                    tracing::info!(remote = %self.remote, transport = ?self.transport, "closing a SIP connection that sent no complete message in time");
                    break;
                }
            }
        }

        // The slot is free by the time the SIP task learns of the close.
        drop(self.permit);

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
        let (transports, inbound) = Transports::start(bound, &EdgePolicy::default());
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

    /// Time within which a connection over a limit must be closed. It is
    /// well below the default first-message timeout (10 s), so a close
    /// found within it comes from the limit.
    const REJECTION_WAIT: Duration = Duration::from_secs(2);

    async fn start_tcp(edge: EdgePolicy) -> (Transports, mpsc::Receiver<Inbound>, SocketAddr) {
        let bound = SipListeners {
            tcp: vec!["127.0.0.1:0".parse().unwrap()],
            ..SipListeners::default()
        }
        .bind()
        .await
        .expect("the TCP listener binds on loopback");
        let (_, server) = bound.local_addrs()[0];
        let (transports, inbound) = Transports::start(bound, &edge);
        (transports, inbound, server)
    }

    /// Connects to `server` from the loopback address `source`, such as 127.0.0.2.
    async fn connect_from(source: &str, server: SocketAddr) -> TcpStream {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
        socket.connect(server).await.unwrap()
    }

    /// Returns whether the server closed `client` (end of stream or reset) within `wait`.
    async fn closed_by_server(client: &mut TcpStream, wait: Duration) -> bool {
        let mut buffer = [0u8; 64];
        matches!(
            tokio::time::timeout(wait, client.read(&mut buffer)).await,
            Ok(Ok(0) | Err(_))
        )
    }

    /// Receives an Opened item and tracks it, because a connection closes
    /// once the writer in its Opened item is dropped.
    async fn expect_opened(transports: &mut Transports, inbound: &mut mpsc::Receiver<Inbound>) {
        let item = next(inbound).await;
        assert!(
            matches!(item, Inbound::Opened { .. }),
            "expected Opened, got {item:?}"
        );
        transports.track(&item);
    }

    async fn expect_closed(inbound: &mut mpsc::Receiver<Inbound>) {
        let item = next(inbound).await;
        assert!(
            matches!(item, Inbound::Closed { .. }),
            "expected Closed, got {item:?}"
        );
    }

    async fn expect_no_item(inbound: &mut mpsc::Receiver<Inbound>) {
        let item = tokio::time::timeout(Duration::from_millis(200), inbound.recv()).await;
        assert!(item.is_err(), "expected no inbound item, got {item:?}");
    }

    #[tokio::test]
    async fn untrusted_source_connection_cap() {
        let (mut transports, mut inbound, server) = start_tcp(EdgePolicy {
            max_connections_per_source: 2,
            ..EdgePolicy::default()
        })
        .await;
        let first = connect_from("127.0.0.1", server).await;
        let _second = connect_from("127.0.0.1", server).await;
        expect_opened(&mut transports, &mut inbound).await;
        expect_opened(&mut transports, &mut inbound).await;

        let mut third = connect_from("127.0.0.1", server).await;
        assert!(closed_by_server(&mut third, REJECTION_WAIT).await);
        expect_no_item(&mut inbound).await;
        assert_eq!(transports.rejected_connections(), 1);

        let _other_source = connect_from("127.0.0.2", server).await;
        expect_opened(&mut transports, &mut inbound).await;

        // A closed connection frees its slot.
        drop(first);
        expect_closed(&mut inbound).await;
        let mut again = connect_from("127.0.0.1", server).await;
        expect_opened(&mut transports, &mut inbound).await;
        assert!(!closed_by_server(&mut again, Duration::from_millis(200)).await);
        assert_eq!(transports.rejected_connections(), 1);
    }

    #[tokio::test]
    async fn trusted_peer_exempt_from_source_cap() {
        let (mut transports, mut inbound, server) = start_tcp(EdgePolicy {
            trusted_peers: vec!["127.0.0.1/32".parse().unwrap()],
            max_connections_per_source: 2,
            ..EdgePolicy::default()
        })
        .await;
        let mut clients = Vec::new();
        for _ in 0..4 {
            clients.push(connect_from("127.0.0.1", server).await);
            expect_opened(&mut transports, &mut inbound).await;
        }
        for client in &mut clients {
            assert!(!closed_by_server(client, Duration::from_millis(100)).await);
        }
        assert_eq!(transports.rejected_connections(), 0);
        assert_eq!(transports.limited_connections(), 4);
    }

    #[tokio::test]
    async fn total_connection_cap_counts_trusted() {
        let (mut transports, mut inbound, server) = start_tcp(EdgePolicy {
            trusted_peers: vec!["127.0.0.1/32".parse().unwrap()],
            max_connections: 2,
            ..EdgePolicy::default()
        })
        .await;
        let _trusted = connect_from("127.0.0.1", server).await;
        let _untrusted = connect_from("127.0.0.2", server).await;
        expect_opened(&mut transports, &mut inbound).await;
        expect_opened(&mut transports, &mut inbound).await;

        let mut third_source = connect_from("127.0.0.3", server).await;
        assert!(closed_by_server(&mut third_source, REJECTION_WAIT).await);
        let mut trusted_again = connect_from("127.0.0.1", server).await;
        assert!(closed_by_server(&mut trusted_again, REJECTION_WAIT).await);
        expect_no_item(&mut inbound).await;
        assert_eq!(transports.rejected_connections(), 2);
    }

    #[tokio::test]
    async fn connection_without_message_is_closed() {
        let first_message_timeout = Duration::from_millis(300);
        let (mut transports, mut inbound, server) = start_tcp(EdgePolicy {
            first_message_timeout,
            ..EdgePolicy::default()
        })
        .await;
        let started = Instant::now();
        let mut silent = connect_from("127.0.0.1", server).await;
        let mut trickling = connect_from("127.0.0.1", server).await;
        expect_opened(&mut transports, &mut inbound).await;
        expect_opened(&mut transports, &mut inbound).await;

        // Bytes that never complete a message do not postpone the close.
        let half = OPTIONS.len() / 2;
        trickling
            .write_all(&OPTIONS.as_bytes()[..half])
            .await
            .unwrap();
        tokio::time::sleep(first_message_timeout / 2).await;
        trickling
            .write_all(&OPTIONS.as_bytes()[half..half + 5])
            .await
            .unwrap();

        assert!(closed_by_server(&mut silent, WAIT).await);
        assert!(closed_by_server(&mut trickling, WAIT).await);
        assert!(started.elapsed() >= first_message_timeout);
        expect_closed(&mut inbound).await;
        expect_closed(&mut inbound).await;
        assert_eq!(transports.limited_connections(), 0);
    }

    #[tokio::test]
    async fn connection_with_message_outlives_first_timeout() {
        let first_message_timeout = Duration::from_millis(300);
        let (mut transports, mut inbound, server) = start_tcp(EdgePolicy {
            first_message_timeout,
            ..EdgePolicy::default()
        })
        .await;
        let mut client = connect_from("127.0.0.1", server).await;
        client.write_all(OPTIONS.as_bytes()).await.unwrap();
        expect_opened(&mut transports, &mut inbound).await;
        assert!(matches!(next(&mut inbound).await, Inbound::Message { .. }));

        assert!(!closed_by_server(&mut client, first_message_timeout * 3).await);
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

    /// Returns SO_RCVBUF of `socket` as the kernel reports it.
    fn receive_buffer_bytes(socket: &UdpSocket) -> usize {
        socket2::SockRef::from(socket)
            .recv_buffer_size()
            .expect("SO_RCVBUF can be read")
    }

    #[tokio::test]
    async fn udp_receive_buffer_above_default() {
        let bound = SipListeners {
            udp: vec!["127.0.0.1:0".parse().unwrap()],
            ..SipListeners::default()
        }
        .bind()
        .await
        .expect("the UDP socket binds on loopback");
        let (_, socket) = &bound.udp[0];
        let plain = UdpSocket::bind("127.0.0.1:0").await.unwrap();

        let granted = receive_buffer_bytes(socket);
        let default = receive_buffer_bytes(&plain);
        assert!(
            granted > default,
            "SIP socket has {granted} bytes, a plain socket {default}"
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn receive_buffer_forced_or_capped() {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let requested = UDP_RECEIVE_BUFFER_BYTES;

        let buffer = enlarge_receive_buffer(socket2::SockRef::from(&socket), requested)
            .expect("the receive buffer can be set");

        // Linux reports twice the size set (socket(7)).
        if buffer.forced {
            assert_eq!(buffer.granted_bytes, 2 * requested);
            return;
        }
        let rmem_max: usize = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
            .expect("net.core.rmem_max is readable")
            .trim()
            .parse()
            .expect("net.core.rmem_max is a number");
        assert_eq!(buffer.granted_bytes, 2 * requested.min(rmem_max));
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
