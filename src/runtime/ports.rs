//! The pool of local RTP ports.

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use std::net::UdpSocket;

/// Hands out even UDP ports from the configured range, one per call.
///
/// RFC 3550 §11 recommends an even RTP port with RTCP on the next odd one;
/// we send no RTCP but keep the odd port free for it.
#[derive(Debug, Clone)]
pub struct RtpPorts {
    /// Address the RTP sockets bind to and that the SDP answer announces.
    address: IpAddr,

    /// Ports not in use, taken from the front and returned to the back so
    /// that a port just released is the last to be reused (late packets of
    /// the old call then find no socket rather than the new call).
    free: Arc<Mutex<VecDeque<u16>>>,
}

/// A bound RTP socket whose port returns to the pool on drop.
#[derive(Debug)]
pub struct RtpSocket {
    /// The socket the call sends and receives RTP on, non-blocking: a
    /// media thread reads it when epoll reports it readable.
    pub socket: UdpSocket,

    /// Port to hand back to the pool.
    port: u16,

    /// The pool the port belongs to.
    free: Arc<Mutex<VecDeque<u16>>>,
}

impl RtpPorts {
    /// Creates the pool for the even ports in `min..=max`.
    pub fn new(address: IpAddr, min: u16, max: u16) -> Self {
        let free = (min..=max).filter(|port| port % 2 == 0).collect();
        Self {
            address,
            free: Arc::new(Mutex::new(free)),
        }
    }

    /// Returns the address RTP sockets bind to.
    pub fn address(&self) -> IpAddr {
        self.address
    }

    /// Binds a socket on the next free port. Ports that another process
    /// holds (AddrInUse) are skipped and put back at the end of the queue.
    ///
    /// Any other error, such as EMFILE ("Too many open files") or an address
    /// that is not on this host, concerns every port alike. It stops the
    /// search at once and is returned with its own kind, and the port goes
    /// back to the front of the queue.
    pub fn bind(&self) -> io::Result<RtpSocket> {
        let attempts = self.lock().len();

        for _ in 0..attempts {
            let Some(port) = self.lock().pop_front() else {
                break;
            };

            let address = SocketAddr::new(self.address, port);
            let bound = UdpSocket::bind(address).and_then(|socket| {
                socket.set_nonblocking(true)?;
                Ok(socket)
            });
            match bound {
                Ok(socket) => {
                    return Ok(RtpSocket {
                        socket,
                        port,
                        free: Arc::clone(&self.free),
                    })
                }
                Err(error) if error.kind() == io::ErrorKind::AddrInUse => {
                    tracing::warn!(port, %error, "RTP port unavailable, trying the next one");
                    self.lock().push_back(port);
                }
                Err(error) => {
                    self.lock().push_front(port);
                    return Err(io::Error::new(
                        error.kind(),
                        format!("binding an RTP socket on {address} failed: {error}"),
                    ));
                }
            }
        }

        Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "no free RTP port left in the configured range; widen media.rtp_port_min..rtp_port_max",
        ))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<u16>> {
        // A panic while holding this lock cannot leave the queue invalid,
        // so a poisoned lock is still safe to use.
        self.free
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl RtpSocket {
    /// Returns the local port, for the SDP answer.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Wraps a socket bound elsewhere; its port goes to `pool` on drop.
    #[cfg(test)]
    pub fn for_tests(socket: UdpSocket, pool: &RtpPorts) -> RtpSocket {
        let port = socket.local_addr().map_or(0, |address| address.port());
        RtpSocket {
            socket,
            port,
            free: Arc::clone(&pool.free),
        }
    }
}

impl Drop for RtpSocket {
    fn drop(&mut self) {
        let mut free = self
            .free
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        free.push_back(self.port);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[tokio::test]
    async fn ports_are_even_and_returned_on_drop() {
        let base = 40_000 + (std::process::id() % 1000) as u16 * 8;
        let pool = RtpPorts::new(IpAddr::V4(Ipv4Addr::LOCALHOST), base, base + 3);

        let first = pool.bind().expect("first port");
        let second = pool.bind().expect("second port");

        assert_eq!(first.port() % 2, 0);
        assert_eq!(second.port() % 2, 0);
        assert_ne!(first.port(), second.port());
        assert!(pool.bind().is_err(), "range of two even ports is exhausted");

        let released = first.port();
        drop(first);
        let again = pool.bind().expect("released port is reusable");
        assert_eq!(again.port(), released);
    }

    #[tokio::test]
    async fn bind_error_other_than_in_use_stops_at_once() {
        // 192.0.2.1 (TEST-NET-1, RFC 5737) is on no interface of this host,
        // so every bind fails with AddrNotAvailable. Like EMFILE, that error
        // is not AddrInUse, so the search must stop at the first port.
        let pool = RtpPorts::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 40_000, 40_007);
        let ports_before: Vec<u16> = pool.lock().iter().copied().collect();

        let error = pool.bind().expect_err("no port can be bound");
        assert_eq!(error.kind(), io::ErrorKind::AddrNotAvailable, "{error}");
        assert!(
            error.to_string().contains("192.0.2.1:40000"),
            "the error names the address: {error}"
        );

        let ports_after: Vec<u16> = pool.lock().iter().copied().collect();
        assert_eq!(ports_after, ports_before, "no port was moved or lost");
    }
}
