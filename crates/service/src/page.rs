//! A page of a listing (users, security events): how many items, after skipping how many,
//! checked once where the numbers come in (a query string, a command's flags), each listing
//! with its own largest page.

use crate::error::ServiceError;

/// The largest offset: the database counts rows in an `i64`.
pub const MAX_OFFSET: u64 = i64::MAX as u64;

/// `limit` items after the first `offset`.
///
/// ```
/// use jwt_auth_service::page::{MAX_OFFSET, Page};
///
/// let page = Page::new(20, 100, 40).unwrap();
/// assert_eq!((page.limit(), page.offset()), (20, 40));
/// assert!(Page::new(0, 100, 0).is_err());
/// assert!(Page::new(101, 100, 0).is_err());
/// assert!(Page::new(1, 100, MAX_OFFSET + 1).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    limit: u32,
    offset: u64,
}

impl Page {
    /// `limit` items, 1 to `most` ([`ServiceError::LimitOutOfRange`]), after the first
    /// `offset`, at most [`MAX_OFFSET`] ([`ServiceError::OffsetOutOfRange`]); the limit is
    /// checked first.
    pub fn new(limit: u32, most: u32, offset: u64) -> Result<Self, ServiceError> {
        if limit == 0 || limit > most {
            return Err(ServiceError::LimitOutOfRange { most });
        }
        if offset > MAX_OFFSET {
            return Err(ServiceError::OffsetOutOfRange { most: MAX_OFFSET });
        }
        Ok(Self { limit, offset })
    }

    /// How many items, at most.
    pub fn limit(self) -> u32 {
        self.limit
    }

    /// How many items are skipped.
    pub fn offset(self) -> u64 {
        self.offset
    }
}
