//! The stream every client connection is read through, and the pingora app
//! that wraps accepted connections in it (see [`super::conns`]).

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::LazyLock;
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

const TIMEOUT_408: &[u8] = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\
    X-Content-Type-Options: nosniff\r\nContent-Length: 0\r\n\r\n";
const BUSY_503: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\
    X-Content-Type-Options: nosniff\r\nContent-Length: 0\r\n\r\n";

/// The answer to a head over `max_header_bytes`: the gateway's JSON error.
static TOO_LARGE_431: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let body = r#"{"error":"header_too_large","message":"The request head (request line and headers) is larger than this gateway accepts (server.max_header_bytes)."}"#;
    format!(
        "HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n\
         Content-Type: application/json; charset=utf-8\r\n\
         X-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
});

/// After its refusal is written, a connection's input is read and thrown
/// away for at most this long and this many bytes before it is closed, so
/// that closing with unread input (a TCP reset) does not destroy the answer
/// before the client reads it (as nginx's lingering close).
const LINGER: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 1 << 20;

/// Why the connection layer ends a connection with an answer of its own.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    /// The head took longer than `header_timeout`: 408.
    TooSlow,
    /// The head is longer than `max_header`: 431.
    TooLarge,
}

impl Refusal {
    fn answer(self) -> &'static [u8] {
        match self {
            Refusal::TooSlow => TIMEOUT_408,
            Refusal::TooLarge => &TOO_LARGE_431,
        }
    }

    fn error(self) -> io::Error {
        match self {
            Refusal::TooSlow => io::Error::new(
                io::ErrorKind::TimedOut,
                "request head not received within server.header_timeout_secs",
            ),
            Refusal::TooLarge => io::Error::new(
                io::ErrorKind::InvalidData,
                "request head larger than server.max_header_bytes",
            ),
        }
    }
}

/// A client connection: reads end (EOF) when it has been idle for
/// `idle_timeout` or was evicted while idle; they fail after writing a 408
/// when a request head takes longer than `header_timeout`, and after
/// writing a 431 when it is longer than `max_header` (a read never takes
/// more of a head than that).
pub struct Guarded {
    inner: Stream,
    conn: Arc<Conn>,
    conns: Arc<Conns>,
    timer: Pin<Box<Sleep>>,
    /// The connection is being refused.
    refused: Option<Refusing>,
}

/// A refusal in progress: its answer is written, then input is discarded.
#[derive(Debug, Clone, Copy)]
struct Refusing {
    why: Refusal,
    /// Bytes of the answer written.
    written: usize,
    /// Bytes of input discarded once the answer is out; `None` before.
    discarded: Option<usize>,
}

impl Guarded {
    fn new(inner: Stream, conn: Arc<Conn>, conns: Arc<Conns>) -> Guarded {
        let idle = conns.limits().idle;
        Guarded {
            inner,
            conn,
            conns,
            timer: Box::pin(tokio::time::sleep(idle)),
            refused: None,
        }
    }

    pub(super) fn conn(&self) -> &Conn {
        &self.conn
    }

    /// Starts refusing the connection: its answer is written, then reads fail.
    fn refuse(&mut self, cx: &mut Context<'_>, why: Refusal) -> Poll<io::Result<()>> {
        if let Refusal::TooLarge = why {
            tracing::info!("request head over server.max_header_bytes: 431, connection closed");
            self.conns.rejected(431);
        } else {
            tracing::info!("request head too slow: 408, connection closed");
        }
        self.refused = Some(Refusing {
            why,
            written: 0,
            discarded: None,
        });
        self.poll_refusal(cx)
    }

    /// Writes the refusal's answer, discards what the client still sends
    /// (within [`LINGER`] and [`LINGER_BYTES`]), then fails the read.
    fn poll_refusal(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(mut r) = self.refused else {
            return Poll::Ready(Ok(()));
        };
        let answer = r.why.answer();
        while r.written < answer.len() {
            match Pin::new(&mut self.inner).poll_write(cx, &answer[r.written..]) {
                Poll::Pending => {
                    self.refused = Some(r);
                    return Poll::Pending;
                }
                Poll::Ready(Ok(n)) if n > 0 => r.written += n,
                Poll::Ready(_) => r.written = answer.len(),
            }
        }
        if r.discarded.is_none() {
            self.refused = Some(r);
            if Pin::new(&mut self.inner).poll_flush(cx).is_pending() {
                return Poll::Pending;
            }
            r.discarded = Some(0);
            let until = tokio::time::Instant::now() + LINGER;
            self.timer.as_mut().reset(until);
        }
        let mut scratch = [0u8; 4096];
        while let Some(discarded) = r.discarded.filter(|d| *d < LINGER_BYTES) {
            let mut sink = ReadBuf::new(&mut scratch);
            match Pin::new(&mut self.inner).poll_read(cx, &mut sink) {
                Poll::Ready(Ok(())) if !sink.filled().is_empty() => {
                    r.discarded = Some(discarded + sink.filled().len());
                }
                Poll::Ready(_) => break,
                Poll::Pending => {
                    self.refused = Some(r);
                    if self.timer.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    break;
                }
            }
        }
        self.refused = Some(Refusing {
            discarded: Some(LINGER_BYTES),
            ..r
        });
        Poll::Ready(Err(r.why.error()))
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
            _ => self.refuse(cx, Refusal::TooSlow),
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
        if this.refused.is_some() {
            return this.poll_refusal(cx);
        }
        let max_header = this.conns.limits().max_header;
        let read = match this.conn.head_budget(max_header) {
            Some(0) => return this.refuse(cx, Refusal::TooLarge),
            Some(budget) if budget < buf.remaining() => {
                // A head may take no more than its budget: read into that
                // much of the buffer only.
                let part = buf.initialize_unfilled_to(budget);
                let mut part = ReadBuf::new(part);
                let read = Pin::new(&mut this.inner).poll_read(cx, &mut part);
                let n = part.filled().len();
                buf.advance(n);
                read.map_ok(|()| n)
            }
            _ => {
                let before = buf.filled().len();
                let read = Pin::new(&mut this.inner).poll_read(cx, buf);
                read.map_ok(|()| buf.filled().len() - before)
            }
        };
        match read {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    this.conn.bytes_read(n);
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
        if this.refused.is_some() {
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
        if this.refused.is_some() {
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
