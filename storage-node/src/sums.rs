//! Block checksums of a stored copy: the `<id>.sums` file beside each
//! object file.
//!
//! A copy's whole-object blake3 identifies its content (the gateway records
//! it, scrub compares it), but checking it on every read costs a full
//! cryptographic hash per byte served and only tells at the *end* of the
//! object that something was wrong — after the bad bytes were sent. The
//! sums file holds a CRC-32C (hardware-accelerated, an order of magnitude
//! cheaper) of every [`BLOCK`]-byte block, as HDFS keeps a `.meta` file per
//! block and ZFS a checksum per record, so that a read checks each block
//! before any of its bytes leave the node, a range read is checked too, and
//! a reader can fail over to another copy at the first bad block.
//!
//! Format: `TPCRC32C`, the block size as a little-endian `u32`, then one
//! little-endian `u32` per block (the last may be short). Its length is
//! therefore fixed by the object's size, which is how a truncated or
//! extended object file (or sums file) is caught before the first byte.
//!
//! Guarantees: [`SumsWriter`] sees exactly the bytes written to the object
//! file; [`SumsReader::check`] fails with [`io::ErrorKind::InvalidData`] on
//! any block whose bytes differ from what was written.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Bytes covered by one checksum. Range reads read at most one block more
/// than asked at each end.
pub const BLOCK: u64 = 64 * 1024;

/// The largest block size a sums file may declare.
const MAX_BLOCK: u64 = 16 << 20;

const MAGIC: &[u8; 8] = b"TPCRC32C";
const HEADER: u64 = MAGIC.len() as u64 + 4;

/// Where the sums of the object file at `object` live.
pub fn sums_path(object: &Path) -> PathBuf {
    let mut name = object.as_os_str().to_owned();
    name.push(".sums");
    PathBuf::from(name)
}

/// Computes block checksums of bytes as they are written.
pub(crate) struct SumsWriter {
    out: BufWriter<File>,
    crc: u32,
    filled: u64,
}

impl SumsWriter {
    pub(crate) fn new(file: File) -> io::Result<Self> {
        let mut out = BufWriter::new(file);
        out.write_all(MAGIC)?;
        out.write_all(&(BLOCK as u32).to_le_bytes())?;
        Ok(Self {
            out,
            crc: 0,
            filled: 0,
        })
    }

    /// Adds the next bytes of the object.
    pub(crate) fn update(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let take = (BLOCK - self.filled).min(data.len() as u64) as usize;
            self.crc = crc32c::crc32c_append(self.crc, &data[..take]);
            self.filled += take as u64;
            data = &data[take..];
            if self.filled == BLOCK {
                self.out.write_all(&self.crc.to_le_bytes())?;
                (self.crc, self.filled) = (0, 0);
            }
        }
        Ok(())
    }

    /// Writes the last (short) block's checksum and returns the file, not
    /// yet fsynced.
    pub(crate) fn finish(mut self) -> io::Result<File> {
        if self.filled > 0 {
            self.out.write_all(&self.crc.to_le_bytes())?;
        }
        self.out.into_inner().map_err(|e| e.into_error())
    }
}

/// Checks blocks of an object against its sums file.
#[derive(Debug)]
pub(crate) struct SumsReader {
    input: BufReader<File>,
    block: u64,
    /// The block whose checksum `input` is positioned at.
    next: u64,
}

impl SumsReader {
    /// Reads the header of `file`, the sums of an object of `object_size`
    /// bytes; fails if the two do not belong together.
    pub(crate) fn new(mut file: File, object_size: u64) -> io::Result<Self> {
        let len = file.metadata()?.len();
        file.rewind()?;
        let mut input = BufReader::with_capacity(4096, file);
        let mut header = [0u8; HEADER as usize];
        input
            .read_exact(&mut header)
            .map_err(|_| bad("sums file too short"))?;
        if &header[..8] != MAGIC {
            return Err(bad("sums file has an unknown format"));
        }
        let block = u64::from(u32::from_le_bytes([
            header[8], header[9], header[10], header[11],
        ]));
        // Bounded so that a damaged header cannot make a reader allocate
        // gigabytes for one block.
        if block == 0 || block > MAX_BLOCK {
            return Err(bad("sums file has an invalid block size"));
        }
        if len != HEADER + 4 * object_size.div_ceil(block) {
            return Err(bad(
                "object file and its block checksums disagree on the size",
            ));
        }
        Ok(Self {
            input,
            block,
            next: 0,
        })
    }

    /// The block size the sums were written with.
    pub(crate) fn block(&self) -> u64 {
        self.block
    }

    /// Checks `data`, the whole of block `index` (short only for the last
    /// block). Blocks are cheapest to check in ascending order.
    pub(crate) fn check(&mut self, index: u64, data: &[u8]) -> io::Result<()> {
        if index != self.next {
            self.input.seek(SeekFrom::Start(HEADER + 4 * index))?;
        }
        let mut sum = [0u8; 4];
        self.input.read_exact(&mut sum)?;
        self.next = index + 1;
        if crc32c::crc32c(data) != u32::from_le_bytes(sum) {
            tracing::error!(block = index, "object block fails its crc32c check");
            return Err(bad("object block fails its crc32c check"));
        }
        Ok(())
    }
}

impl SumsReader {
    /// Checks `data`, consecutive whole blocks from block `first` on (only
    /// the object's last block may be short), as [`Self::check`] does.
    pub(crate) fn check_blocks(&mut self, first: u64, data: &[u8]) -> io::Result<()> {
        for (i, b) in data.chunks(self.block as usize).enumerate() {
            self.check(first + i as u64, b)?;
        }
        Ok(())
    }
}

fn bad(msg: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn written(data: &[u8], pieces: usize) -> File {
        let mut f = tempfile::tempfile().unwrap();
        let mut w = SumsWriter::new(f.try_clone().unwrap()).unwrap();
        for part in data.chunks(pieces.max(1)) {
            w.update(part).unwrap();
        }
        w.finish().unwrap();
        f.seek(SeekFrom::Start(0)).unwrap();
        f
    }

    proptest! {
        /// However the bytes were split when written, every block checks
        /// against the bytes and fails against any flipped byte.
        #[test]
        fn blocks_check_and_flips_fail(
            len in 0usize..(3 * BLOCK as usize + 100),
            piece in 1usize..200_000,
            flip in any::<prop::sample::Index>(),
        ) {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 % 253) as u8).collect();
            let mut r = SumsReader::new(written(&data, piece), len as u64).unwrap();
            for (i, b) in data.chunks(BLOCK as usize).enumerate() {
                r.check(i as u64, b).unwrap();
            }
            if len > 0 {
                let at = flip.index(len);
                let mut bad = data.clone();
                bad[at] ^= 0x20;
                let block = at / BLOCK as usize;
                let start = block * BLOCK as usize;
                let end = (start + BLOCK as usize).min(len);
                let err = r.check(block as u64, &bad[start..end]).unwrap_err();
                prop_assert_eq!(err.kind(), io::ErrorKind::InvalidData);
            }
        }
    }

    #[test]
    fn size_mismatch_is_refused() {
        let data = vec![1u8; BLOCK as usize + 1];
        let f = written(&data, 4096);
        let err = SumsReader::new(f.try_clone().unwrap(), BLOCK).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        // Same block count, so only the blocks' checksums can tell.
        SumsReader::new(f, BLOCK + 2).unwrap();
    }

    #[test]
    fn sums_path_is_beside_the_object() {
        assert_eq!(
            sums_path(Path::new("/d/objects/ab/abcd")),
            Path::new("/d/objects/ab/abcd.sums")
        );
    }
}
