//! HTTP to the account server with a cap on every answer's body: a token or
//! userinfo answer larger than [`MAX_ANSWER_BYTES`] is an error, found while
//! streaming (never more than the cap is kept), not after buffering it.
//!
//! [`BoundedHttp`] is `oauth2`'s async HTTP client for the token endpoint and
//! reads `/oauth/userinfo` too.

use std::future::Future;
use std::pin::Pin;

use oauth2::{AsyncHttpClient, HttpRequest, HttpResponse};

/// The most the gateway reads of one answer of the account server.
pub const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// Why an answer could not be read. Never holds a body.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{0}")]
    Request(#[from] reqwest::Error),
    #[error("the answer is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the answer could not be passed on: {0}")]
    Http(#[from] http::Error),
}

/// A `reqwest::Client` whose answers are read up to `limit` bytes.
#[derive(Debug, Clone)]
pub struct BoundedHttp {
    pub client: reqwest::Client,
    pub limit: usize,
}

impl BoundedHttp {
    pub fn new(client: reqwest::Client) -> Self {
        BoundedHttp {
            client,
            limit: MAX_ANSWER_BYTES,
        }
    }

    /// The body of `response`, or `TooLarge` as soon as it passes the cap
    /// (by its `Content-Length` or while it streams in).
    pub async fn body(&self, mut response: reqwest::Response) -> Result<Vec<u8>, FetchError> {
        let too_large = FetchError::TooLarge { limit: self.limit };
        if response
            .content_length()
            .is_some_and(|n| n > self.limit as u64)
        {
            return Err(too_large);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if body.len() + chunk.len() > self.limit {
                return Err(too_large);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

impl<'c> AsyncHttpClient<'c> for BoundedHttp {
    type Error = FetchError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, FetchError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let request = reqwest::Request::try_from(request)?;
            let response = self.client.execute(request).await?;
            let mut builder = http::Response::builder()
                .status(response.status())
                .version(response.version());
            for (name, value) in response.headers() {
                builder = builder.header(name, value);
            }
            let body = self.body(response).await?;
            Ok(builder.body(body)?)
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::net::SocketAddr;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// A loopback server that answers every request with `head` and then
    /// `body_len` bytes of `a`, ending the body by closing the connection
    /// (so the client cannot know the length in advance unless `head` says).
    pub(crate) async fn streaming_server(head: &'static str, body_len: usize) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                tokio::spawn(async move {
                    // Read the request head and its body, if it announces one.
                    let mut request = Vec::new();
                    let mut buf = [0u8; 4096];
                    loop {
                        let Ok(n) = conn.read(&mut buf).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        request.extend_from_slice(&buf[..n]);
                        let text = String::from_utf8_lossy(&request).to_ascii_lowercase();
                        if let Some(end) = text.find("\r\n\r\n") {
                            let announced = text
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .and_then(|v| v.trim().parse::<usize>().ok())
                                .unwrap_or(0);
                            if request.len() >= end + 4 + announced {
                                break;
                            }
                        }
                    }
                    if conn.write_all(head.as_bytes()).await.is_err() {
                        return;
                    }
                    let chunk = vec![b'a'; 64 * 1024];
                    let mut left = body_len;
                    while left > 0 {
                        let n = left.min(chunk.len());
                        if conn.write_all(&chunk[..n]).await.is_err() {
                            return;
                        }
                        left -= n;
                    }
                    let _ = conn.shutdown().await;
                });
            }
        });
        addr
    }

    const STREAMED: &str =
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n";

    async fn fetch(client: &BoundedHttp, addr: SocketAddr) -> Result<Vec<u8>, FetchError> {
        let response = client
            .client
            .get(format!("http://{addr}/"))
            .send()
            .await
            .unwrap();
        client.body(response).await
    }

    #[tokio::test]
    async fn a_streamed_body_is_cut_at_the_cap() {
        let client = BoundedHttp {
            client: reqwest::Client::new(),
            limit: 1000,
        };
        let at_cap = streaming_server(STREAMED, 1000).await;
        assert_eq!(fetch(&client, at_cap).await.unwrap().len(), 1000);
        let over = streaming_server(STREAMED, 1001).await;
        assert!(matches!(
            fetch(&client, over).await,
            Err(FetchError::TooLarge { limit: 1000 })
        ));
    }

    #[tokio::test]
    async fn five_mib_streamed_or_announced_is_too_large() {
        let client = BoundedHttp::new(reqwest::Client::new());
        let streamed = streaming_server(STREAMED, 5 * 1024 * 1024).await;
        let e = fetch(&client, streamed).await.unwrap_err();
        assert_eq!(e.to_string(), "the answer is larger than 1048576 bytes");
        let announced = streaming_server(
            "HTTP/1.1 200 OK\r\nContent-Length: 5242880\r\nConnection: close\r\n\r\n",
            5 * 1024 * 1024,
        )
        .await;
        assert!(matches!(
            fetch(&client, announced).await,
            Err(FetchError::TooLarge { .. })
        ));
    }
}
