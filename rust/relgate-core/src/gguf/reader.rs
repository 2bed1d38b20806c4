//! A bounded little-endian reader over a GGUF header: every read is checked against the
//! bytes present, and nothing is read past [`super::MAX_HEADER_LEN`].

use std::path::Path;

use super::{rules, MAX_HEADER_LEN};
use crate::error::{CoreError, Result};

/// Bounded little-endian reader over the header. Reads past the file are `TRUNCATED`,
/// reads past [`MAX_HEADER_LEN`] in a longer file are `HEADER_LENGTH`.
pub(super) struct Reader<'a> {
    path: &'a Path,
    file: &'a [u8],
    /// `min(file length, MAX_HEADER_LEN)`.
    end: usize,
    pub pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(path: &'a Path, file: &'a [u8]) -> Self {
        let end = file.len().min(MAX_HEADER_LEN as usize);
        Reader {
            path,
            file,
            end,
            pos: 0,
        }
    }

    pub fn fail(&self, rule: &'static str, detail: impl Into<String>) -> CoreError {
        CoreError::integrity(self.path, rule, detail)
    }

    pub fn remaining(&self) -> u64 {
        (self.end - self.pos) as u64
    }

    pub fn short(&self, what: &dyn Fn() -> String, n: u64) -> CoreError {
        if self.end < self.file.len() {
            self.fail(
                rules::HEADER_LENGTH,
                format!(
                    "{} at byte {} runs past the {MAX_HEADER_LEN}-byte header limit",
                    what(),
                    self.pos
                ),
            )
        } else {
            self.fail(
                rules::TRUNCATED,
                format!(
                    "{} at byte {} needs {n} bytes, {} left",
                    what(),
                    self.pos,
                    self.remaining()
                ),
            )
        }
    }

    pub fn bytes(&mut self, n: u64, what: &dyn Fn() -> String) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(self.short(what, n));
        }
        let start = self.pos;
        // n <= remaining <= usize::MAX: checked just above.
        self.pos += n as usize;
        Ok(&self.file[start..self.pos])
    }

    pub fn skip(&mut self, n: u64, what: &dyn Fn() -> String) -> Result<()> {
        self.bytes(n, what).map(|_| ())
    }

    pub fn u16(&mut self, what: &dyn Fn() -> String) -> Result<u16> {
        let b = self.bytes(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    pub fn u32(&mut self, what: &dyn Fn() -> String) -> Result<u32> {
        let b = self.bytes(4, what)?;
        Ok(u32::from_le_bytes(b.try_into().expect("4 bytes")))
    }

    pub fn u64(&mut self, what: &dyn Fn() -> String) -> Result<u64> {
        let b = self.bytes(8, what)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    /// A u64-length-prefixed string, as raw bytes.
    pub fn string(&mut self, what: &dyn Fn() -> String) -> Result<&'a [u8]> {
        let len = self.u64(&|| format!("{} length", what()))?;
        if len > self.remaining() {
            if self.end < self.file.len() {
                return Err(self.short(what, len));
            }
            return Err(self.fail(
                rules::STRING_LENGTH,
                format!(
                    "{} at byte {} claims {len} bytes, {} left in the file",
                    what(),
                    self.pos,
                    self.remaining()
                ),
            ));
        }
        self.bytes(len, what)
    }
}
