//! The framing shared by the agent and its task worker processes: the
//! control channel of a worker (its stdin and stdout) and the builtin proxy
//! connections (a unix socket) both carry a sequence of frames.
//!
//! A frame is `[kind: u8][len: u32 big-endian][len bytes of payload]`.
//!
//! Guarantees: a payload is never larger than [`MAX_PAYLOAD`] (a longer
//! length is an error before anything is allocated); an unknown kind is an
//! error; decoding never panics on any input; a stream that ends inside a
//! frame is an error, one that ends between frames is `Ok(None)`.

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

/// Largest payload of one frame (a phase spec with its environment fits;
/// data is sent in chunks far below this).
pub const MAX_PAYLOAD: usize = 8 << 20;
/// Bytes of a frame header.
pub const HEADER: usize = 5;

/// What a frame carries. The numbers are the wire values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// Agent → worker: a phase to run (JSON).
    Run = 1,
    /// Bytes of a stdin stream (phase or builtin).
    Stdin = 2,
    /// The stdin stream ended.
    StdinEnd = 3,
    /// Worker → agent: the phase's outcome (JSON).
    Report = 4,
    /// Worker → agent: a builtin call (JSON).
    Call = 5,
    /// Bytes of stdout (phase stream or builtin).
    Stdout = 6,
    /// Bytes of a builtin's stderr.
    Stderr = 7,
    /// Agent → worker: a builtin's exit status (i32, big-endian).
    Exit = 8,
    /// Worker → agent: nobody reads the builtin's stdout any more.
    StdoutClosed = 9,
    /// Agent → worker: the builtin reads its stdin; send the next chunk.
    StdinWant = 10,
}

impl Kind {
    const ALL: [Kind; 10] = [
        Kind::Run,
        Kind::Stdin,
        Kind::StdinEnd,
        Kind::Report,
        Kind::Call,
        Kind::Stdout,
        Kind::Stderr,
        Kind::Exit,
        Kind::StdoutClosed,
        Kind::StdinWant,
    ];

    fn from_u8(b: u8) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| *k as u8 == b)
    }
}

/// One frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub kind: Kind,
    pub payload: Vec<u8>,
}

impl Frame {
    /// A frame of `kind` carrying `payload`.
    pub fn new(kind: Kind, payload: impl Into<Vec<u8>>) -> Frame {
        Frame {
            kind,
            payload: payload.into(),
        }
    }

    /// A frame with an empty payload.
    pub fn empty(kind: Kind) -> Frame {
        Frame::new(kind, Vec::new())
    }

    /// An [`Kind::Exit`] frame.
    pub fn exit(status: i32) -> Frame {
        Frame::new(Kind::Exit, status.to_be_bytes().to_vec())
    }

    /// An [`Kind::Exit`] frame for a builtin that charged `disk_charged`
    /// bytes to its task's disk budget.
    pub fn exit_charged(status: i32, disk_charged: u64) -> Frame {
        let mut payload = status.to_be_bytes().to_vec();
        payload.extend_from_slice(&disk_charged.to_be_bytes());
        Frame::new(Kind::Exit, payload)
    }

    /// The status of an [`Kind::Exit`] frame.
    pub fn exit_status(&self) -> Result<i32, FrameError> {
        Ok(self.exit_parts()?.0)
    }

    /// The disk bytes an [`Kind::Exit`] frame says were charged (0 when
    /// it does not say).
    pub fn exit_disk_charged(&self) -> Result<u64, FrameError> {
        Ok(self.exit_parts()?.1)
    }

    fn exit_parts(&self) -> Result<(i32, u64), FrameError> {
        let bad = || FrameError::BadPayload("exit status");
        let p = self.payload.as_slice();
        let status: [u8; 4] = p.get(..4).ok_or_else(bad)?.try_into().map_err(|_| bad())?;
        let charged = match p.len() {
            4 => 0,
            12 => u64::from_be_bytes(p[4..].try_into().map_err(|_| bad())?),
            _ => return Err(bad()),
        };
        Ok((i32::from_be_bytes(status), charged))
    }

    /// A frame whose payload is `value` as JSON.
    pub fn json<T: serde::Serialize>(kind: Kind, value: &T) -> Result<Frame, FrameError> {
        let payload = serde_json::to_vec(value).map_err(|_| FrameError::BadPayload("json"))?;
        if payload.len() > MAX_PAYLOAD {
            return Err(FrameError::TooLarge(payload.len() as u64));
        }
        Ok(Frame { kind, payload })
    }

    /// The payload parsed as JSON.
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, FrameError> {
        serde_json::from_slice(&self.payload).map_err(|_| FrameError::BadPayload("json"))
    }

    /// The frame's bytes on the wire.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER + self.payload.len());
        out.push(self.kind as u8);
        // Payloads are built below MAX_PAYLOAD, so this fits in u32.
        out.extend_from_slice(&(self.payload.len() as u32).to_be_bytes());
        out.extend_from_slice(&self.payload);
        out
    }
}

/// A malformed or cut-off frame stream.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// Reading or writing the stream failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The stream ended inside a frame.
    #[error("stream ended inside a frame")]
    Truncated,
    /// A kind byte that is not a [`Kind`].
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    /// A length above [`MAX_PAYLOAD`].
    #[error("frame of {0} bytes is too large")]
    TooLarge(u64),
    /// A payload that is not what its kind needs.
    #[error("bad {0} payload")]
    BadPayload(&'static str),
}

/// Decodes the header `h`: the kind and payload length.
fn header(h: [u8; HEADER]) -> Result<(Kind, usize), FrameError> {
    let kind = Kind::from_u8(h[0]).ok_or(FrameError::UnknownKind(h[0]))?;
    let len = u32::from_be_bytes([h[1], h[2], h[3], h[4]]) as usize;
    if len > MAX_PAYLOAD {
        return Err(FrameError::TooLarge(len as u64));
    }
    Ok((kind, len))
}

/// Decodes one frame from the front of `buf`: `Ok(None)` when `buf` holds
/// no whole frame yet, else the frame and the bytes it took.
pub fn decode(buf: &[u8]) -> Result<Option<(Frame, usize)>, FrameError> {
    let Some(h) = buf.get(..HEADER) else {
        return Ok(None);
    };
    let (kind, len) = header([h[0], h[1], h[2], h[3], h[4]])?;
    let Some(payload) = buf.get(HEADER..HEADER + len) else {
        return Ok(None);
    };
    Ok(Some((Frame::new(kind, payload), HEADER + len)))
}

/// Reads the next frame; `Ok(None)` at a clean end of stream.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> Result<Option<Frame>, FrameError> {
    let mut h = [0u8; HEADER];
    let mut got = 0;
    while got < HEADER {
        let n = r.read(&mut h[got..]).await?;
        if n == 0 {
            return if got == 0 {
                Ok(None)
            } else {
                Err(FrameError::Truncated)
            };
        }
        got += n;
    }
    let (kind, len) = header(h)?;
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            FrameError::Truncated
        } else {
            FrameError::Io(e)
        }
    })?;
    Ok(Some(Frame { kind, payload }))
}

/// Writes one frame and flushes it.
pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, f: &Frame) -> Result<(), FrameError> {
    w.write_all(&f.encode()).await?;
    w.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn kind() -> impl Strategy<Value = Kind> {
        proptest::sample::select(Kind::ALL.to_vec())
    }

    proptest! {
        #[test]
        fn frames_round_trip(frames in proptest::collection::vec(
            (kind(), proptest::collection::vec(any::<u8>(), 0..300)), 0..8)
        ) {
            let frames: Vec<Frame> = frames.into_iter().map(|(k, p)| Frame::new(k, p)).collect();
            let wire: Vec<u8> = frames.iter().flat_map(Frame::encode).collect();
            // Whole-buffer decoding.
            let mut at = 0;
            let mut back = Vec::new();
            while let Some((f, n)) = decode(&wire[at..]).map_err(|e| TestCaseError::fail(e.to_string()))? {
                back.push(f);
                at += n;
            }
            prop_assert_eq!(at, wire.len());
            prop_assert_eq!(&back, &frames);
            // Stream decoding.
            let rt = tokio::runtime::Builder::new_current_thread().build()
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let streamed = rt.block_on(async {
                let mut r = &wire[..];
                let mut out = Vec::new();
                while let Some(f) = read_frame(&mut r).await? {
                    out.push(f);
                }
                Ok::<_, FrameError>(out)
            }).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(streamed, frames);
        }

        #[test]
        fn any_bytes_decode_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn cut_frames_are_incomplete_not_wrong(payload in proptest::collection::vec(any::<u8>(), 0..100), cut in 0usize..105) {
            let wire = Frame::new(Kind::Stdout, payload).encode();
            let cut = cut.min(wire.len().saturating_sub(1));
            prop_assert!(matches!(decode(&wire[..cut]), Ok(None)));
        }
    }

    #[tokio::test]
    async fn bad_streams_are_errors() {
        // Unknown kind.
        assert!(matches!(
            decode(&[0, 0, 0, 0, 0]),
            Err(FrameError::UnknownKind(0))
        ));
        // A length above the cap is refused before reading the payload.
        let mut big = vec![Kind::Stdin as u8];
        big.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(decode(&big), Err(FrameError::TooLarge(_))));
        let mut r = &big[..];
        assert!(matches!(
            read_frame(&mut r).await,
            Err(FrameError::TooLarge(_))
        ));
        // Ends inside the header, then inside the payload.
        let wire = Frame::new(Kind::Stdout, b"abc".to_vec()).encode();
        let mut r = &wire[..3];
        assert!(matches!(
            read_frame(&mut r).await,
            Err(FrameError::Truncated)
        ));
        let mut r = &wire[..6];
        assert!(matches!(
            read_frame(&mut r).await,
            Err(FrameError::Truncated)
        ));
        // A clean end.
        let mut r = &[][..];
        assert!(matches!(read_frame(&mut r).await, Ok(None)));
        // Exit status.
        assert_eq!(Frame::exit(-3).exit_status().ok(), Some(-3));
        assert!(Frame::new(Kind::Exit, vec![1]).exit_status().is_err());
        assert!(Frame::new(Kind::Exit, vec![0; 9]).exit_status().is_err());
        let f = Frame::exit_charged(2, 1 << 40);
        assert_eq!(f.exit_status().ok(), Some(2));
        assert_eq!(f.exit_disk_charged().ok(), Some(1 << 40));
        assert_eq!(Frame::exit(0).exit_disk_charged().ok(), Some(0));
    }
}
