//! A packet buffer with headroom, so encapsulation prepends a header in place instead of
//! moving the payload.

use crate::error::RewriteError;

/// Headroom that fits the largest header this crate prepends (IPv6 + UDP + GUE with
/// options, or IPv6 + GRE with checksum and key) plus an Ethernet header with a VLAN tag.
pub const DEFAULT_HEADROOM: usize = 128;

/// A packet inside a larger storage buffer: `storage[start..end]` is the packet, the bytes
/// before `start` are headroom.
///
/// The storage is anything byte-addressable the embedder owns (`Vec<u8>`, `[u8; 2048]`,
/// `&mut [u8]` borrowed from a ring), so the engine never allocates per packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketBuf<B = Vec<u8>> {
    storage: B,
    start: usize,
    end: usize,
}

impl PacketBuf<Vec<u8>> {
    /// Copies `packet` into a new `Vec` with `headroom` free bytes in front of it.
    #[must_use]
    pub fn with_headroom(headroom: usize, packet: &[u8]) -> Self {
        let mut storage = vec![0u8; headroom + packet.len()];
        storage[headroom..].copy_from_slice(packet);
        Self {
            storage,
            start: headroom,
            end: headroom + packet.len(),
        }
    }
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> PacketBuf<B> {
    /// Wraps `storage` whose bytes `start..start + len` hold a packet.
    ///
    /// # Errors
    /// [`RewriteError::OutputTooSmall`] if the range runs past the storage.
    pub fn new(storage: B, start: usize, len: usize) -> Result<Self, RewriteError> {
        let cap = storage.as_ref().len();
        match start.checked_add(len) {
            Some(end) if end <= cap => Ok(Self {
                storage,
                start,
                end,
            }),
            _ => Err(RewriteError::OutputTooSmall {
                needed: start.saturating_add(len),
                available: cap,
            }),
        }
    }

    /// The packet bytes.
    #[must_use]
    #[inline(always)]
    pub fn packet(&self) -> &[u8] {
        &self.storage.as_ref()[self.start..self.end]
    }

    /// The packet bytes, writable.
    #[must_use]
    #[inline(always)]
    pub fn packet_mut(&mut self) -> &mut [u8] {
        &mut self.storage.as_mut()[self.start..self.end]
    }

    /// Packet length in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// Whether the packet is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Free bytes in front of the packet.
    #[must_use]
    pub fn headroom(&self) -> usize {
        self.start
    }

    /// Free bytes behind the packet.
    #[must_use]
    pub fn tailroom(&self) -> usize {
        self.storage.as_ref().len() - self.end
    }

    /// Grows the packet at the front by `n` bytes and returns the new front bytes, whose
    /// contents are whatever the headroom held.
    ///
    /// # Errors
    /// [`RewriteError::InsufficientHeadroom`] if fewer than `n` bytes of headroom are left;
    /// nothing changes then.
    pub fn prepend(&mut self, n: usize) -> Result<&mut [u8], RewriteError> {
        if n > self.start {
            return Err(RewriteError::InsufficientHeadroom {
                needed: n,
                available: self.start,
            });
        }
        self.start -= n;
        let s = self.start;
        Ok(&mut self.storage.as_mut()[s..s + n])
    }

    /// Removes `n` bytes from the front of the packet (they become headroom).
    ///
    /// # Errors
    /// [`RewriteError::NotEncapsulated`] if the packet is shorter than `n`.
    pub fn advance(&mut self, n: usize) -> Result<(), RewriteError> {
        if n > self.len() {
            return Err(RewriteError::NotEncapsulated);
        }
        self.start += n;
        Ok(())
    }

    /// Shortens the packet to `len` bytes (drops trailing padding); longer lengths are ignored.
    pub fn truncate(&mut self, len: usize) {
        if len < self.len() {
            self.end = self.start + len;
        }
    }

    /// Sets the packet to `start..end` of the storage, for adapters that reuse one buffer.
    ///
    /// # Errors
    /// [`RewriteError::OutputTooSmall`] if the range is empty-inverted or runs past the storage.
    pub fn set_range(&mut self, start: usize, end: usize) -> Result<(), RewriteError> {
        let cap = self.storage.as_ref().len();
        if start > end || end > cap {
            return Err(RewriteError::OutputTooSmall {
                needed: end,
                available: cap,
            });
        }
        self.start = start;
        self.end = end;
        Ok(())
    }

    /// The whole storage, headroom included.
    #[must_use]
    pub fn storage(&self) -> &B {
        &self.storage
    }

    /// Gives the storage back with the packet's range.
    #[must_use]
    pub fn into_parts(self) -> (B, core::ops::Range<usize>) {
        (self.storage, self.start..self.end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepend_and_advance_keep_payload_in_place() {
        let mut b = PacketBuf::with_headroom(8, b"payload");
        assert_eq!(b.headroom(), 8);
        b.prepend(3).unwrap().copy_from_slice(b"hdr");
        assert_eq!(b.packet(), b"hdrpayload");
        assert_eq!(
            b.prepend(6).unwrap_err(),
            RewriteError::InsufficientHeadroom {
                needed: 6,
                available: 5
            }
        );
        assert_eq!(b.packet(), b"hdrpayload", "failed prepend changes nothing");
        b.advance(3).unwrap();
        assert_eq!(b.packet(), b"payload");
        assert!(b.advance(8).is_err());
        b.truncate(3);
        assert_eq!(b.packet(), b"pay");
    }

    #[test]
    fn borrowed_storage() {
        let mut store = [0u8; 32];
        store[16..20].copy_from_slice(b"abcd");
        let mut b = PacketBuf::new(&mut store[..], 16, 4).unwrap();
        b.prepend(2).unwrap().copy_from_slice(b"xy");
        assert_eq!(b.packet(), b"xyabcd");
        assert!(PacketBuf::new(&mut [0u8; 4][..], 2, 3).is_err());
    }
}
