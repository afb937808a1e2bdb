//! Bounded in-memory byte pipes that connect pipeline stages, and the host.
//!
//! A pipe holds at most `capacity` bytes: a writer that outruns its reader
//! waits (the guest's `fd_write` suspends its fiber, never a thread), so a
//! pipeline of any length uses bounded memory. Both ends implement
//! wasmtime-wasi's stream traits directly, so a guest write is one `memcpy`
//! into the buffer rather than a hand-off to a helper task.
//!
//! End-of-file and broken pipe follow POSIX: the reader sees EOF once every
//! writer handle is gone, and writers get `EPIPE` (`StreamError::Closed`)
//! once every reader handle is gone.
//!
//! A reader can also be backed by a host file ([`file_reader`]): it has no
//! writer, and reads come straight from the file (the phase's input object
//! needs no copying task, and a guest's `fd_read` lands in its memory in one
//! copy). Every clone shares the file position, as processes sharing an open
//! file description do.

use std::fs::File;
use std::future::poll_fn;
use std::io::Read;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use wasmtime_wasi::cli::{IsTerminal, StdinStream, StdoutStream};
use wasmtime_wasi::p2::{InputStream, OutputStream, Pollable, StreamError, StreamResult};

/// Default buffer of a pipe between two stages (Linux uses 64 KiB too).
pub const DEFAULT_CAPACITY: usize = 256 * 1024;
/// Buffer of the pipe from a run to its stdout destination: large writes
/// to the host file or stream cost less per byte.
pub const OUTPUT_CAPACITY: usize = 1024 * 1024;

struct State {
    buf: BytesMut,
    capacity: usize,
    writers: usize,
    readers: usize,
    read_wakers: Vec<Waker>,
    write_wakers: Vec<Waker>,
    /// The host file behind a [`file_reader`], until it reaches end of file.
    file: Option<File>,
    /// That file's metadata, taken when the reader was made.
    file_meta: Option<std::fs::Metadata>,
}

/// How much a file-backed reader pulls into its buffer when a caller wants
/// bytes rather than handing it a destination.
const FILE_CHUNK: usize = 256 * 1024;

impl State {
    fn wake_readers(&mut self) {
        self.read_wakers.drain(..).for_each(Waker::wake);
    }
    fn wake_writers(&mut self) {
        self.write_wakers.drain(..).for_each(Waker::wake);
    }
    fn space(&self) -> usize {
        self.capacity.saturating_sub(self.buf.len())
    }
    /// No more bytes will ever arrive beyond what is buffered.
    fn ended(&self) -> bool {
        self.writers == 0 && self.file.is_none()
    }
    /// Reads straight from the backing file into `dst`: `Some(n)`, 0 at
    /// its end (which drops the file); `None` when there is no file. Page
    /// cache reads are short, so they run on the calling thread, as
    /// wasmtime-wasi's own blocking file reads may.
    fn read_file(&mut self, dst: &mut [u8]) -> Option<std::io::Result<usize>> {
        let f = self.file.as_mut()?;
        let r = loop {
            match f.read(dst) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                r => break r,
            }
        };
        if !matches!(r, Ok(n) if n > 0) {
            self.file = None;
        }
        Some(r)
    }
    /// With an empty buffer and a backing file, pulls the next chunk in.
    /// A read error ends the input (the bytes read so far stand).
    fn refill(&mut self, max: usize) {
        if !self.buf.is_empty() || self.file.is_none() {
            return;
        }
        let mut chunk = BytesMut::zeroed(max.clamp(1, FILE_CHUNK));
        if let Some(Ok(n)) = self.read_file(&mut chunk) {
            chunk.truncate(n);
            self.buf = chunk;
        }
    }
}

#[derive(Clone)]
struct Shared(Arc<Mutex<State>>);

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means another handle panicked mid-update of a
        // byte buffer; the buffer itself is still consistent.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Creates a pipe holding at most `capacity` bytes.
pub fn pipe(capacity: usize) -> (PipeWriter, PipeReader) {
    let shared = Shared(Arc::new(Mutex::new(State {
        buf: BytesMut::new(),
        capacity: capacity.max(1),
        writers: 1,
        readers: 1,
        read_wakers: Vec::new(),
        write_wakers: Vec::new(),
        file: None,
        file_meta: None,
    })));
    (PipeWriter(shared.clone()), PipeReader(shared))
}

/// A reader whose bytes come from `file` (from its current position to its
/// end), with no writer.
pub fn file_reader(file: File) -> PipeReader {
    PipeReader(Shared(Arc::new(Mutex::new(State {
        buf: BytesMut::new(),
        capacity: 1,
        writers: 0,
        readers: 1,
        read_wakers: Vec::new(),
        write_wakers: Vec::new(),
        file_meta: file.metadata().ok(),
        file: Some(file),
    }))))
}

/// The write end. Clones are further writers of the same pipe.
pub struct PipeWriter(Shared);

/// The read end. Clones share one read position.
pub struct PipeReader(Shared);

impl Clone for PipeWriter {
    fn clone(&self) -> Self {
        self.0.lock().writers += 1;
        PipeWriter(self.0.clone())
    }
}

impl Clone for PipeReader {
    fn clone(&self) -> Self {
        self.0.lock().readers += 1;
        PipeReader(self.0.clone())
    }
}

impl Drop for PipeWriter {
    fn drop(&mut self) {
        let mut s = self.0.lock();
        s.writers -= 1;
        if s.writers == 0 {
            s.wake_readers();
        }
    }
}

impl Drop for PipeReader {
    fn drop(&mut self) {
        let mut s = self.0.lock();
        s.readers -= 1;
        if s.readers == 0 {
            // Nobody will ever read this again: free it and fail the writers.
            s.buf = BytesMut::new();
            s.file = None;
            s.wake_writers();
        }
    }
}

impl PipeWriter {
    /// Waits until there is room (returns the room) or the reader is gone (`None`).
    pub(crate) fn poll_space(&self, cx: &mut Context<'_>) -> Poll<Option<usize>> {
        let mut s = self.0.lock();
        if s.readers == 0 {
            return Poll::Ready(None);
        }
        let space = s.space();
        if space > 0 {
            return Poll::Ready(Some(space));
        }
        s.write_wakers.push(cx.waker().clone());
        Poll::Pending
    }

    /// Appends up to the free space; returns how much was taken, `None` if closed.
    pub(crate) fn push(&self, data: &[u8]) -> Option<usize> {
        let mut s = self.0.lock();
        if s.readers == 0 {
            return None;
        }
        let n = data.len().min(s.space());
        s.buf.extend_from_slice(&data[..n]);
        if n > 0 {
            s.wake_readers();
        }
        Some(n)
    }

    /// Waits until a reader waits on the empty pipe (`true`: bytes are
    /// wanted now) or every reader is gone (`false`). For a writer that
    /// fetches its bytes from elsewhere and must fetch only what is read
    /// (a builtin running in another process than its phase's stdin).
    pub async fn wanted(&self) -> bool {
        poll_fn(|cx| {
            let mut s = self.0.lock();
            if s.readers == 0 {
                return Poll::Ready(false);
            }
            if s.buf.is_empty() && !s.read_wakers.is_empty() {
                return Poll::Ready(true);
            }
            s.write_wakers.push(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// Writes all of `data`, waiting for the reader; `false` if the reader went away.
    pub async fn write_all(&self, mut data: &[u8]) -> bool {
        while !data.is_empty() {
            if poll_fn(|cx| self.poll_space(cx)).await.is_none() {
                return false;
            }
            match self.push(data) {
                Some(n) => data = &data[n..],
                None => return false,
            }
        }
        true
    }
}

impl PipeReader {
    /// Takes up to `max` buffered bytes: `Some(empty)` if none yet, `None` at EOF.
    fn take(&self, max: usize) -> Option<Bytes> {
        let mut s = self.0.lock();
        s.refill(max);
        if s.buf.is_empty() {
            return if s.ended() { None } else { Some(Bytes::new()) };
        }
        let n = max.min(s.buf.len());
        let out = s.buf.split_to(n).freeze();
        s.wake_writers();
        Some(out)
    }

    /// Ready when a read would not wait: bytes are buffered, a backing file
    /// can be read, or the input has ended.
    pub(crate) fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut s = self.0.lock();
        if !s.buf.is_empty() || s.writers == 0 {
            return Poll::Ready(());
        }
        s.read_wakers.push(cx.waker().clone());
        // A writer waiting in `wanted` learns that bytes are asked for.
        s.wake_writers();
        Poll::Pending
    }

    /// Reads one line (without its newline) the way `read` in a shell must:
    /// consuming nothing past the newline, so later readers see the rest.
    /// `None` at EOF with nothing read. Lines longer than `max` are cut there.
    pub async fn read_line(&self, max: usize) -> Option<Vec<u8>> {
        let mut line = Vec::new();
        loop {
            poll_fn(|cx| self.poll_readable(cx)).await;
            let mut s = self.0.lock();
            s.refill(FILE_CHUNK);
            if s.buf.is_empty() {
                if !s.ended() {
                    // Another reader took the bytes that made us ready.
                    continue;
                }
                return if line.is_empty() { None } else { Some(line) };
            }
            let room = max.saturating_sub(line.len());
            match memchr_newline(&s.buf) {
                Some(i) if i <= room => {
                    line.extend_from_slice(&s.buf.split_to(i + 1)[..i]);
                    s.wake_writers();
                    return Some(line);
                }
                _ => {
                    let n = s.buf.len().min(room);
                    line.extend_from_slice(&s.buf.split_to(n));
                    s.wake_writers();
                    if line.len() >= max {
                        return Some(line);
                    }
                }
            }
        }
    }

    /// Copies buffered bytes (or reads the backing file) straight into
    /// `dst`: `Some(n)`, `Some(0)` at end of input, `None` if nothing is
    /// available yet (wait with [`poll_readable`](Self::poll_readable)).
    pub(crate) fn try_read_into(&self, dst: &mut [u8]) -> std::io::Result<Option<usize>> {
        let mut s = self.0.lock();
        if !s.buf.is_empty() {
            let n = dst.len().min(s.buf.len());
            dst[..n].copy_from_slice(&s.buf[..n]);
            s.buf.advance(n);
            s.wake_writers();
            return Ok(Some(n));
        }
        if let Some(r) = s.read_file(dst) {
            let n = r?;
            if n > 0 || s.writers == 0 {
                return Ok(Some(n));
            }
        }
        Ok(s.ended().then_some(0))
    }

    /// Metadata of the backing file, if the reader was made from one.
    pub(crate) fn file_metadata(&self) -> Option<std::fs::Metadata> {
        self.0.lock().file_meta.clone()
    }

    /// Reads the next chunk of at most `max` bytes; `None` at EOF.
    pub async fn read_chunk(&self, max: usize) -> Option<Bytes> {
        loop {
            poll_fn(|cx| self.poll_readable(cx)).await;
            match self.take(max) {
                Some(b) if b.is_empty() => continue,
                other => return other,
            }
        }
    }
}

fn memchr_newline(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}

#[async_trait::async_trait]
impl Pollable for PipeWriter {
    async fn ready(&mut self) {
        poll_fn(|cx| self.poll_space(cx)).await;
    }
}

#[async_trait::async_trait]
impl OutputStream for PipeWriter {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        match self.push(&bytes) {
            None => Err(StreamError::Closed),
            Some(n) if n == bytes.len() => Ok(()),
            // check_write promised this much room and only writers add bytes,
            // so this is a guest bug in the permit protocol.
            Some(_) => Err(StreamError::trap("write exceeded the permitted size")),
        }
    }
    fn flush(&mut self) -> StreamResult<()> {
        // Bytes are visible to the reader as soon as they are written.
        Ok(())
    }
    fn check_write(&mut self) -> StreamResult<usize> {
        let s = self.0.lock();
        if s.readers == 0 {
            Err(StreamError::Closed)
        } else {
            Ok(s.space())
        }
    }
}

#[async_trait::async_trait]
impl Pollable for PipeReader {
    async fn ready(&mut self) {
        poll_fn(|cx| self.poll_readable(cx)).await;
    }
}

#[async_trait::async_trait]
impl InputStream for PipeReader {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        self.take(size).ok_or(StreamError::Closed)
    }
}

impl IsTerminal for PipeWriter {
    fn is_terminal(&self) -> bool {
        false
    }
}
impl IsTerminal for PipeReader {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for PipeWriter {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl StdinStream for PipeReader {
    fn p2_stream(&self) -> Box<dyn InputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn AsyncRead + Send + Sync> {
        Box::new(self.clone())
    }
}

impl AsyncWrite for PipeWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.poll_space(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into())),
            Poll::Ready(Some(_)) => match self.push(buf) {
                Some(n) => Poll::Ready(Ok(n)),
                None => Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into())),
            },
        }
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for PipeReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        loop {
            match self.poll_readable(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(()) => match self.take(buf.remaining()) {
                    None => return Poll::Ready(Ok(())),
                    Some(b) if b.is_empty() => continue,
                    Some(b) => {
                        buf.put_slice(&b);
                        return Poll::Ready(Ok(()));
                    }
                },
            }
        }
    }
}

/// First size of a buffer copying a stream of unknown length; see
/// [`grow_copy_buffer`].
pub const FIRST_COPY_BUFFER: usize = 16 * 1024;

/// Doubles `buf`, up to `max` bytes, when the last read (`filled` bytes)
/// filled it. Most tasks move a few bytes through each of their streams:
/// a zeroed 1 MiB buffer for each was about 5% of a map job's CPU (issue
/// 17's profile: `memset` under the output drains), while a large stream
/// reaches 1 MiB reads after six doublings.
pub fn grow_copy_buffer(buf: &mut Vec<u8>, filled: usize, max: usize) {
    if filled == buf.len() && buf.len() < max {
        buf.resize((buf.len() * 2).min(max), 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_buffers_grow_only_when_filled_and_stop_at_the_cap() {
        let mut buf = vec![0u8; FIRST_COPY_BUFFER];
        grow_copy_buffer(&mut buf, 10, 1 << 20);
        assert_eq!(buf.len(), FIRST_COPY_BUFFER, "a short read keeps the size");
        let mut sizes = Vec::new();
        for _ in 0..10 {
            let filled = buf.len();
            grow_copy_buffer(&mut buf, filled, 1 << 20);
            sizes.push(buf.len() >> 10);
        }
        assert_eq!(sizes, [32, 64, 128, 256, 512, 1024, 1024, 1024, 1024, 1024]);
        let mut odd = vec![0u8; 48 << 10];
        grow_copy_buffer(&mut odd, 48 << 10, 64 << 10);
        assert_eq!(odd.len(), 64 << 10, "capped, not doubled past the cap");
    }

    #[tokio::test]
    async fn bytes_flow_in_order_and_eof_after_last_writer() {
        let (w, r) = pipe(4);
        let w2 = w.clone();
        let producer = tokio::spawn(async move {
            assert!(w.write_all(b"hello ").await);
            assert!(w2.write_all(b"world").await);
        });
        let mut got = Vec::new();
        while let Some(chunk) = r.read_chunk(3).await {
            assert!(chunk.len() <= 3);
            got.extend_from_slice(&chunk);
        }
        producer.await.unwrap();
        assert_eq!(got, b"hello world");
    }

    #[tokio::test]
    async fn wanted_only_when_a_reader_waits_on_an_empty_pipe() {
        let (w, r) = pipe(16);
        // Nobody reads yet: not wanted.
        use futures::FutureExt as _;
        assert!(
            w.wanted().now_or_never().is_none(),
            "no reader waits, nothing is wanted"
        );
        let reader = tokio::spawn(async move {
            let first = r.read_chunk(16).await;
            (first, r)
        });
        assert!(w.wanted().await, "a reader waits");
        assert!(w.write_all(b"abc").await);
        let (first, r) = reader.await.unwrap();
        assert_eq!(first.as_deref(), Some(&b"abc"[..]));
        drop(r);
        assert!(!w.wanted().await, "no reader left");
    }

    #[tokio::test]
    async fn writer_sees_broken_pipe_when_reader_is_gone() {
        let (mut w, r) = pipe(4);
        drop(r);
        assert!(!w.write_all(b"x").await);
        assert!(matches!(w.check_write(), Err(StreamError::Closed)));
    }

    #[tokio::test]
    async fn read_line_consumes_only_one_line() {
        let (w, r) = pipe(64);
        assert!(w.write_all(b"one\ntwo\nthree").await);
        drop(w);
        assert_eq!(r.read_line(100).await.unwrap(), b"one");
        assert_eq!(r.read_chunk(4).await.unwrap().as_ref(), b"two\n");
        assert_eq!(r.read_line(100).await.unwrap(), b"three");
        assert!(r.read_line(100).await.is_none());
    }

    #[test]
    fn capacity_bounds_buffered_bytes() {
        let (mut w, _r) = pipe(8);
        assert_eq!(w.check_write().unwrap(), 8);
        w.write(Bytes::from_static(b"12345678")).unwrap();
        assert_eq!(w.check_write().unwrap(), 0);
        assert!(w.write(Bytes::from_static(b"9")).is_err());
    }
}
