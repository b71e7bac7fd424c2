//! Where log lines go between a worker and stderr: a byte buffer that
//! workers append whole lines to (a short lock, no system call, no wake-up)
//! and one thread writes out every [`FLUSH_EVERY`]. Bounded: past
//! [`LOG_BUFFER_BYTES`] waiting, lines are dropped and counted, so a blocked
//! stderr never stalls requests nor grows memory.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// Bytes of log lines waiting for the writer thread, at most.
pub const LOG_BUFFER_BYTES: usize = 4 * 1024 * 1024;
/// How often the writer thread writes what is waiting.
pub const FLUSH_EVERY: Duration = Duration::from_millis(10);

struct Shared {
    waiting: Mutex<Vec<u8>>,
    limit: usize,
    dropped: AtomicU64,
    stop: AtomicBool,
    wake: Condvar,
}

/// The workers' end: a `tracing` writer (one `write` a line).
#[derive(Clone)]
pub struct QueueWriter(Arc<Shared>);

/// The writer thread; [`LogQueue::finish`] writes the rest and stops it.
pub struct LogQueue {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl LogQueue {
    /// A queue of at most `limit` bytes in front of `out`, and its writer.
    pub fn start(out: impl Write + Send + 'static, limit: usize) -> (LogQueue, QueueWriter) {
        let shared = Arc::new(Shared {
            waiting: Mutex::new(Vec::with_capacity(64 * 1024)),
            limit,
            dropped: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            wake: Condvar::new(),
        });
        let worker = shared.clone();
        let thread = std::thread::Builder::new()
            .name("dsgw-log".into())
            .spawn(move || write_out(&worker, out))
            .ok();
        let queue = LogQueue {
            shared: shared.clone(),
            thread,
        };
        (queue, QueueWriter(shared))
    }

    /// Writes what is waiting and stops the thread; later lines wait forever
    /// (the process is about to exit).
    pub fn finish(mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl QueueWriter {
    /// Appends one whole line, or drops and counts it if it does not fit.
    pub fn push(&self, line: &[u8]) {
        let Ok(mut waiting) = self.0.waiting.lock() else {
            return;
        };
        if waiting.len() + line.len() > self.0.limit {
            self.0.dropped.fetch_add(1, Ordering::Relaxed);
        } else {
            waiting.extend_from_slice(line);
        }
    }

    /// Lines dropped so far because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.0.dropped.load(Ordering::Relaxed)
    }
}

/// The writer thread: every `FLUSH_EVERY` (or when stopped), swap the
/// buffer for an empty one and write it, outside the lock.
fn write_out(shared: &Shared, mut out: impl Write) {
    let mut spare = Vec::with_capacity(64 * 1024);
    loop {
        let stopping = {
            let Ok(waiting) = shared.waiting.lock() else {
                return;
            };
            let (mut waiting, _) = match shared.wake.wait_timeout(waiting, FLUSH_EVERY) {
                Ok(woken) => woken,
                Err(_) => return,
            };
            std::mem::swap(&mut *waiting, &mut spare);
            shared.stop.load(Ordering::Acquire)
        };
        if !spare.is_empty() {
            // Nowhere to report a failed write to: the lines are lost.
            let _ = out.write_all(&spare).and_then(|()| out.flush());
            spare.clear();
        }
        if stopping {
            return;
        }
    }
}

impl Write for QueueWriter {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        self.push(line);
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for QueueWriter {
    type Writer = QueueWriter;

    fn make_writer(&'a self) -> QueueWriter {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `Write` into shared memory.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_arrive_in_order_and_finish_writes_the_rest() {
        let sink = Sink::default();
        let (queue, mut writer) = LogQueue::start(sink.clone(), 1024);
        writer.write_all(b"one\n").unwrap();
        std::thread::sleep(FLUSH_EVERY * 5);
        assert_eq!(
            sink.0.lock().unwrap().as_slice(),
            b"one\n",
            "written by the thread"
        );
        writer.write_all(b"two\n").unwrap();
        queue.finish();
        assert_eq!(sink.0.lock().unwrap().as_slice(), b"one\ntwo\n");
        assert_eq!(writer.dropped(), 0);
    }

    #[test]
    fn a_full_queue_drops_whole_lines_and_counts_them() {
        /// An output that never finishes a write (stderr blocked).
        struct Stuck;
        impl Write for Stuck {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                std::thread::sleep(Duration::from_secs(3600));
                Ok(0)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let (_queue, mut writer) = LogQueue::start(Stuck, 10);
        // The first line may be taken by the (then stuck) thread; after it,
        // at most 10 bytes wait and every other line is dropped whole.
        for _ in 0..100 {
            writer.write_all(b"12345\n").unwrap();
        }
        let waiting = writer.0.waiting.lock().unwrap().len();
        assert!(waiting <= 10 && waiting % 6 == 0, "{waiting}");
        assert!(writer.dropped() >= 97, "{}", writer.dropped());
    }
}
