//! The stream every client connection is read through, and the pingora app
//! that wraps accepted connections in it (see [`super::conns`]).

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::protocols::raw_connect::ProxyDigest;
use pingora::protocols::tls::{SslDigest, TlsRef};
use pingora::protocols::{GetProxyDigest, GetSocketDigest, GetTimingDigest};
use pingora::protocols::{Peek, Shutdown, Ssl, Stream, UniqueID, UniqueIDType, ALPN};
use pingora::protocols::{SocketDigest, TimingDigest};
use pingora::server::ShutdownWatch;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::time::Sleep;

use super::conns::{Conn, Conns, Phase};

const TIMEOUT_408: &[u8] =
    b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
const BUSY_503: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";

/// A client connection: reads end (EOF) when it has been idle for
/// `idle_timeout` or was evicted while idle, and fail after writing a 408
/// when a request head takes longer than `header_timeout`.
pub struct Guarded {
    inner: Stream,
    conn: Arc<Conn>,
    conns: Arc<Conns>,
    timer: Pin<Box<Sleep>>,
    /// The head timed out: how much of the 408 is written.
    timed_out: Option<usize>,
}

impl Guarded {
    fn new(inner: Stream, conn: Arc<Conn>, conns: Arc<Conns>) -> Guarded {
        let idle = conns.limits().idle;
        Guarded {
            inner,
            conn,
            conns,
            timer: Box::pin(tokio::time::sleep(idle)),
            timed_out: None,
        }
    }

    pub(super) fn conn(&self) -> &Conn {
        &self.conn
    }

    /// Writes the 408, then fails the read.
    fn poll_408(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut written = self.timed_out.unwrap_or(0);
        while written < TIMEOUT_408.len() {
            match Pin::new(&mut self.inner).poll_write(cx, &TIMEOUT_408[written..]) {
                Poll::Pending => {
                    self.timed_out = Some(written);
                    return Poll::Pending;
                }
                Poll::Ready(Ok(n)) if n > 0 => written += n,
                Poll::Ready(_) => break,
            }
        }
        self.timed_out = Some(TIMEOUT_408.len());
        if Pin::new(&mut self.inner).poll_flush(cx).is_pending() {
            return Poll::Pending;
        }
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "request head not received within server.header_timeout_secs",
        )))
    }

    /// Nothing to read yet: is a limit of the connection's phase reached?
    fn poll_limits(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let seen = self.conn.seen(cx.waker());
        let limit = match seen.phase {
            Phase::Busy => return Poll::Pending,
            Phase::Idle if seen.evicted => return Poll::Ready(Ok(())),
            Phase::Idle => self.conns.limits().idle,
            Phase::Head => self.conns.limits().header,
        };
        let deadline = tokio::time::Instant::from_std(seen.since + limit);
        // The timer is moved only when it would fire too late. Armed earlier
        // (for a deadline of an earlier phase), it fires early and is moved
        // on then: so a connection's requests do not each reset it, one
        // firing per `idle_timeout` does.
        if self.timer.deadline() > deadline {
            self.timer.as_mut().reset(deadline);
        }
        loop {
            if self.timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            if self.timer.deadline() >= deadline {
                break;
            }
            self.timer.as_mut().reset(deadline);
        }
        match seen.phase {
            // Idle too long: end of stream, pingora closes quietly.
            Phase::Idle => Poll::Ready(Ok(())),
            _ => {
                tracing::info!("request head too slow: 408, connection closed");
                self.poll_408(cx)
            }
        }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.conns.remove(&self.conn);
    }
}

impl fmt::Debug for Guarded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guarded")
            .field("inner", &self.inner)
            .finish()
    }
}

impl AsyncRead for Guarded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.timed_out.is_some() {
            return this.poll_408(cx);
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.conn.head_started();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => this.poll_limits(cx),
        }
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.timed_out.is_some() {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.timed_out.is_some() {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[async_trait]
impl Shutdown for Guarded {
    async fn shutdown(&mut self) {
        Shutdown::shutdown(&mut *self.inner).await
    }
}

impl UniqueID for Guarded {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for Guarded {
    fn get_ssl(&self) -> Option<&TlsRef> {
        self.inner.get_ssl()
    }
    fn get_ssl_digest(&self) -> Option<Arc<SslDigest>> {
        self.inner.get_ssl_digest()
    }
    fn selected_alpn_proto(&self) -> Option<ALPN> {
        self.inner.selected_alpn_proto()
    }
}

impl GetTimingDigest for Guarded {
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        self.inner.get_timing_digest()
    }
    fn get_read_pending_time(&self) -> Duration {
        self.inner.get_read_pending_time()
    }
    fn get_write_pending_time(&self) -> Duration {
        self.inner.get_write_pending_time()
    }
}

impl GetProxyDigest for Guarded {
    fn get_proxy_digest(&self) -> Option<Arc<ProxyDigest>> {
        self.inner.get_proxy_digest()
    }
    fn set_proxy_digest(&mut self, digest: ProxyDigest) {
        self.inner.set_proxy_digest(digest)
    }
}

impl GetSocketDigest for Guarded {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        self.inner.get_socket_digest()
    }
    fn set_socket_digest(&mut self, digest: SocketDigest) {
        self.inner.set_socket_digest(digest)
    }
}

#[async_trait]
impl Peek for Guarded {
    async fn try_peek(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        self.inner.try_peek(buf).await
    }
}

/// A pingora app whose connections are [`Guarded`] and counted in `conns`.
pub struct Guard<A> {
    app: Arc<A>,
    conns: Arc<Conns>,
}

impl<A> Guard<A> {
    pub fn new(app: A, conns: Arc<Conns>) -> Guard<A> {
        Guard {
            app: Arc::new(app),
            conns,
        }
    }
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for Guard<A> {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let Some(conn) = self.conns.admit() else {
            refuse(stream).await;
            return None;
        };
        if matches!(stream.selected_alpn_proto(), Some(ALPN::H2)) {
            // HTTP/2 (over TLS): many requests interleave on one connection,
            // so it is counted (and holds shutdown until pingora closes it)
            // but never timed or evicted here: pingora's h2 handling rules.
            conn.mark_http2();
        }
        let guarded = Guarded::new(stream, conn, self.conns.clone());
        // An HTTP app serves every request of the connection itself and
        // returns None; a returned stream is already guarded.
        self.app.process_new(Box::new(guarded), shutdown).await
    }

    async fn cleanup(&self) {
        self.app.cleanup().await
    }
}

/// At the cap with no idle connection to close: 503, closed.
async fn refuse(mut stream: Stream) {
    tracing::warn!("server.max_connections reached and none idle: new connection refused");
    let write = async {
        stream.write_all(BUSY_503).await?;
        stream.flush().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
}
