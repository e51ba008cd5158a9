//! Random access to a model file that is not in memory: the file on disk natively, and in the
//! browser a file in the origin's private storage or a `File` the user picked. Loading through a
//! reader keeps at most one tensor in memory at a time, which is what lets a phone tab load a
//! model whose file is as large as the memory it may use.

use std::cell::Cell;

use super::gguf::{self, GgufError, Header};
use super::DType;
use crate::{Error, Result};

/// A file read by offset. `read_at` fills all of `buf` or fails.
pub trait ByteReader {
    fn len(&self) -> u64;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()>;
}

/// A GGUF header is small (config and tokenizer included, about 1 MB for BLIP); a file whose
/// header claims more than this is refused instead of read.
pub const MAX_HEADER_BYTES: u64 = 64 << 20;

/// One tensor read from a file: name, shape, dtype and bytes.
pub type ReadTensor<'a> = (&'a str, &'a [usize], DType, Vec<u8>);

/// A GGUF file read through a [`ByteReader`]: the header at once, tensors when asked for.
pub struct StreamedGguf<'a> {
    reader: &'a dyn ByteReader,
    header: Header,
    /// Bytes of tensor data read so far, and the callback told after each tensor.
    loaded: Cell<u64>,
    progress: Option<&'a dyn Fn(u64, u64)>,
}

impl<'a> StreamedGguf<'a> {
    pub fn open(reader: &'a dyn ByteReader, progress: Option<&'a dyn Fn(u64, u64)>) -> Result<Self> {
        let len = reader.len();
        let mut want = len.min(1 << 20);
        let header = loop {
            let mut prefix = vec![0u8; want as usize];
            reader.read_at(0, &mut prefix)?;
            match gguf::parse_header(&prefix) {
                Ok(h) => break h,
                Err(GgufError::Truncated { needed, .. }) if want >= len => {
                    return Err(GgufError::Truncated { needed, available: len }.into())
                }
                Err(GgufError::Truncated { .. }) if want >= MAX_HEADER_BYTES => {
                    return Err(Error::model(format!("the GGUF header is larger than {MAX_HEADER_BYTES} bytes")))
                }
                // Grow geometrically so a large tokenizer costs a few reads, not thousands.
                Err(GgufError::Truncated { needed, .. }) => want = needed.max(want * 2).min(len).min(MAX_HEADER_BYTES),
                Err(e) => return Err(e.into()),
            }
        };
        if header.data_end > len {
            let t = header.tensors.iter().max_by_key(|t| t.offset + t.size as u64);
            return Err(GgufError::DataOutOfBounds {
                tensor: t.map(|t| t.name.clone()).unwrap_or_default(),
                end: header.data_end,
                len,
            }
            .into());
        }
        Ok(Self { reader, header, loaded: Cell::new(0), progress })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.header.get(key)?.as_str()
    }

    /// Sum of every tensor's data: what progress counts up to.
    pub fn total_bytes(&self) -> u64 {
        self.header.tensors.iter().map(|t| t.size as u64).sum()
    }

    /// The named tensor's bytes, read now.
    pub fn read(&self, name: &str) -> Result<Option<ReadTensor<'_>>> {
        let Some(info) = self.header.tensor(name)? else { return Ok(None) };
        let mut data = Vec::new();
        data.try_reserve_exact(info.size)
            .map_err(|_| Error::model(format!("no memory for tensor {name} ({} bytes)", info.size)))?;
        data.resize(info.size, 0);
        self.reader.read_at(info.offset, &mut data)?;
        let loaded = self.loaded.get() + info.size as u64;
        self.loaded.set(loaded);
        if let Some(progress) = self.progress {
            progress(loaded, self.total_bytes());
        }
        Ok(Some((&info.name, &info.shape, info.dtype, data)))
    }
}

impl ByteReader for &[u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let range = usize::try_from(offset).ok().and_then(|s| Some(s..s.checked_add(buf.len())?));
        let src = range.and_then(|r| self.get(r)).ok_or_else(|| {
            Error::model(format!("read of {} bytes at {offset} is past the end ({} bytes)", buf.len(), self.len()))
        })?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

#[cfg(unix)]
impl ByteReader for std::fs::File {
    fn len(&self) -> u64 {
        self.metadata().map(|m| m.len()).unwrap_or(0)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(self, buf, offset)
            .map_err(|e| Error::io(format!("reading {} bytes at {offset}", buf.len()), e))
    }
}
